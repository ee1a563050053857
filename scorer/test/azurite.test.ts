// The model published to blob storage (Azurite, the Azure Storage emulator) and
// fetched with a real SAS token, as in production: the whole start-up of
// startScorer in-process — download, sha256, session, self-test, ready.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { parseConfig } from '../src/config';
import { startScorer, type RunningScorer } from '../src/server';
import { ROOT, SMOKE_ROWS, call, fnolModel, testLogger } from './support';
import { freePort } from '../../test/support/net';

// Azurite's documented development account (public, not a secret).
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

// Azurite listens on loopback over plain http: the scorer's local mode.
const LOCAL_STORE = { MODEL_LOCAL_MODE: 'true', MODEL_ALLOWED_HOSTS: '127.0.0.1' };

describe('scorer with a model in blob storage (Azurite)', function () {
  let azurite: ChildProcess;
  let blobUrl: string;
  let sas: string;
  let sha256: string;
  let scorer: RunningScorer | undefined;

  before(async function () {
    const port = await freePort();
    azurite = spawn(
      join(ROOT, 'node_modules/.bin/azurite-blob'),
      [
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--inMemoryPersistence',
        '--skipApiVersionCheck',
        '--silent',
      ],
      { stdio: 'ignore' },
    );
    const endpoint = `http://127.0.0.1:${port}/${ACCOUNT}`;
    const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
    const service = new BlobServiceClient(endpoint, credential, { retryOptions: { maxTries: 1 } });
    for (let i = 0; ; i++) {
      try {
        await service.getProperties();
        break;
      } catch (error) {
        if (i > 600) throw error; // Azurite starts slowly on a busy machine
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const container = service.getContainerClient('models');
    await container.create();
    const model = readFileSync(fnolModel());
    sha256 = createHash('sha256').update(model).digest('hex');
    await container.getBlockBlobClient('fnol/1.0.0/fnol-1.0.0.onnx').uploadData(model);
    await container
      .getBlockBlobClient('fnol/1.0.0/fnol-1.0.0.model-card.json')
      .uploadData(readFileSync(fnolModel().replace(/\.onnx$/, '.model-card.json')));
    blobUrl = `${endpoint}/models/fnol/1.0.0/fnol-1.0.0.onnx`;
    sas = generateBlobSASQueryParameters(
      {
        containerName: 'models',
        permissions: BlobSASPermissions.parse('r'),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      credential,
    ).toString();
  });
  after(async () => {
    await scorer?.shutdown();
    azurite?.kill();
  });

  it('starts from the blob with a SAS token, serves the model card, and scores', async () => {
    const config = parseConfig(
      {
        ...LOCAL_STORE,
        MODEL_URI: blobUrl,
        MODEL_SHA256: sha256,
        MODEL_SAS_TOKEN: sas,
        PORT: '0',
        HOST: '127.0.0.1',
      },
      () => '',
    );
    scorer = await startScorer(config, { logger: testLogger() });
    assert.equal((await call(scorer.url, '/readyz')).status, 200);
    const card = await call(scorer.url, '/model');
    assert.equal((card.body as { sha256: string }).sha256, sha256);
    assert.equal((card.body as { card: { version: string } }).card.version, '1.0.0');
    const reply = await call(scorer.url, '/score', { body: { data: SMOKE_ROWS } });
    assert.equal(reply.status, 200, reply.text);
    assert.equal((reply.body as { result: number[] }).result.length, 2);
  });

  it('refuses to start without a valid token, saying what to check', async () => {
    const forged = sas.replace(/sig=[^&]+/, 'sig=AAAA');
    const config = parseConfig(
      {
        ...LOCAL_STORE,
        MODEL_URI: blobUrl,
        MODEL_SHA256: sha256,
        MODEL_SAS_TOKEN: forged,
        PORT: '0',
        HOST: '127.0.0.1',
      },
      () => '',
    );
    await assert.rejects(startScorer(config, { logger: testLogger() }), /HTTP 403; check the SAS token/);
  });
});
