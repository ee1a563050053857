// The model store and the publish step against a real Azurite blob service.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ContainerSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { ImmutableVersionError, connectFromEnv, sha256 } from '../../cli/src/model-store';
import { publishModel } from '../../cli/src/publish-model';
import { useStore } from './support/store';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const STORE_PORT = process.env.FNOL_STORE_PORT ?? '10000';

function modelDir(version: string, content: Buffer): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fnol-publish-'));
  writeFileSync(path.join(dir, `fnol-${version}.onnx`), content);
  writeFileSync(
    path.join(dir, `fnol-${version}.model-card.json`),
    JSON.stringify({ name: 'fnol', version, sha256: sha256(content), created: new Date().toISOString() }),
  );
  return dir;
}

describe('model store (Azurite) and model publishing', function () {
  this.timeout(120_000);
  let env: Record<string, string>;
  let service: BlobServiceClient;
  const container = `test-${randomBytes(4).toString('hex')}`;
  const lines: string[] = [];
  const log = (l: string): void => void lines.push(l);

  before(async function () {
    env = await useStore();
    service = connectFromEnv(env).client;
  });

  after(async function () {
    await service?.getContainerClient(container).deleteIfExists();
  });

  it('publishes a new version under fnol/<version>/ with its sha256', async function () {
    const content = randomBytes(200_000);
    const dir = modelDir('2.0.0', content);
    const result = await publishModel({ version: '2.0.0', modelDir: dir, container, log, env });
    assert.equal(result.status, 'published');
    assert.equal(result.sha256, sha256(content));
    assert.equal(
      result.uri,
      `http://127.0.0.1:${STORE_PORT}/devstoreaccount1/${container}/fnol/2.0.0/fnol-2.0.0.onnx`,
    );
    const blobs = service.getContainerClient(container);
    const stored = await blobs.getBlobClient('fnol/2.0.0/fnol-2.0.0.onnx').downloadToBuffer();
    assert.ok(stored.equals(content), 'stored model differs from the file');
    const card = JSON.parse(
      (await blobs.getBlobClient('fnol/2.0.0/fnol-2.0.0.model-card.json').downloadToBuffer()).toString(),
    ) as { version: string };
    assert.equal(card.version, '2.0.0');
    assert.ok(
      lines.some((l) => l.includes('uploading fnol/2.0.0/fnol-2.0.0.onnx')),
      'no progress shown',
    );
  });

  it('publishing the same content again is a no-op success', async function () {
    const content = randomBytes(50_000);
    const first = await publishModel({
      version: '2.1.0',
      modelDir: modelDir('2.1.0', content),
      container,
      log,
      env,
    });
    // A rebuilt card (new timestamp) of the same model does not count as a change.
    const again = await publishModel({
      version: '2.1.0',
      modelDir: modelDir('2.1.0', content),
      container,
      log,
      env,
    });
    assert.equal(first.status, 'published');
    assert.equal(again.status, 'unchanged');
    assert.equal(again.sha256, first.sha256);
    assert.equal(again.modelCard.sha256, first.modelCard.sha256);
  });

  it('refuses to overwrite a published version with different content', async function () {
    const original = randomBytes(40_000);
    await publishModel({ version: '2.2.0', modelDir: modelDir('2.2.0', original), container, log, env });
    await assert.rejects(
      publishModel({
        version: '2.2.0',
        modelDir: modelDir('2.2.0', randomBytes(40_000)),
        container,
        log,
        env,
      }),
      (err: unknown) =>
        err instanceof ImmutableVersionError &&
        /immutable: give the model a new version number/.test(err.message),
    );
    const stored = await service
      .getContainerClient(container)
      .getBlobClient('fnol/2.2.0/fnol-2.2.0.onnx')
      .downloadToBuffer();
    assert.ok(stored.equals(original), 'the published version was changed');
  });

  it('CLI: --json prints one JSON document; a SAS from a file works and is never printed', async function () {
    const account = 'devstoreaccount1';
    const key = /AccountKey=([^;]+)/.exec(env.AZURE_STORAGE_CONNECTION_STRING!)![1]!;
    await service.getContainerClient(container).createIfNotExists();
    const sas = generateBlobSASQueryParameters(
      {
        containerName: container,
        permissions: ContainerSASPermissions.parse('racwl'),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      new StorageSharedKeyCredential(account, key),
    ).toString();
    const secretDir = mkdtempSync(path.join(tmpdir(), 'fnol-sas-'));
    writeFileSync(path.join(secretDir, 'sas'), sas, { mode: 0o600 });
    const content = randomBytes(30_000);
    const dir = modelDir('3.0.0', content);
    const out = path.join(dir, 'artifact');
    const child = await run(
      'npx',
      [
        'tsx',
        'cli/src/publish-model.ts',
        '--version',
        '3.0.0',
        '--container',
        container,
        '--model-dir',
        dir,
        '--json',
        '--out',
        out,
      ],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          AZURE_STORAGE_CONNECTION_STRING: '',
          AZURE_STORAGE_ACCOUNT_URL: `http://127.0.0.1:${STORE_PORT}/${account}`,
          AZURE_STORAGE_SAS_FILE: path.join(secretDir, 'sas'),
        },
      },
    );
    const result = JSON.parse(child.stdout) as { uri: string; sha256: string; status: string };
    assert.equal(result.status, 'published');
    assert.equal(result.sha256, sha256(content));
    assert.doesNotMatch(result.uri, /\?/);
    const sig = new URLSearchParams(sas).get('sig')!;
    assert.ok(!child.stdout.includes(sig) && !child.stderr.includes(sig), 'the SAS signature was printed');
    assert.deepEqual(JSON.parse(readFileSync(path.join(out, 'publish.json'), 'utf8')), result);
    assert.ok(existsSync(path.join(out, 'fnol-3.0.0.model-card.json')));
  });

  it('CLI: a missing store configuration or model file is a clear error', async function () {
    const noStore = await run('npx', ['tsx', 'cli/src/publish-model.ts', '--version', '1.0.0'], {
      cwd: ROOT,
      env: { ...process.env, AZURE_STORAGE_CONNECTION_STRING: '', AZURE_STORAGE_ACCOUNT_URL: '' },
    }).then(
      () => assert.fail('publish without a store succeeded'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(noStore.code, 1);
    assert.match(noStore.stderr, /no model store configured: set AZURE_STORAGE_CONNECTION_STRING/);
    await assert.rejects(
      publishModel({
        version: '9.9.9',
        modelDir: mkdtempSync(path.join(tmpdir(), 'x-')),
        container,
        log,
        env,
      }),
      /fnol-9\.9\.9\.onnx does not exist; compile the model first/,
    );
    await assert.rejects(
      publishModel({ version: 'latest', modelDir: '.', container, log, env }),
      /"latest" is not a semantic version/,
    );
  });

  it('the pipeline step publishes the compiled model 1.0.0 and writes the artifact', async function () {
    const model = path.join(ROOT, 'build/model/fnol-1.0.0.onnx');
    assert.ok(existsSync(model), 'build/model/fnol-1.0.0.onnx is missing: npm run model:build');
    const out = mkdtempSync(path.join(tmpdir(), 'fnol-artifact-'));
    await run(
      'bash',
      ['pipeline/publish-model.sh', '--version', '1.0.0', '--container', container, '--out', out],
      {
        cwd: ROOT,
        env: { ...process.env, ...env },
      },
    );
    const result = JSON.parse(readFileSync(path.join(out, 'publish.json'), 'utf8')) as {
      sha256: string;
      uri: string;
    };
    assert.equal(result.sha256, sha256(readFileSync(model)));
    assert.match(result.uri, /\/fnol\/1\.0\.0\/fnol-1\.0\.0\.onnx$/);
  });
});
