// What the Build stage hands to the deploy stages besides the images: the
// CycloneDX SBOM of each image (pipeline/sbom.sh, npm sbom) and the images'
// digests, from which the deploy stages render the operator install
// (pipeline/render-operator-digests.sh, real `kubectl kustomize`).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ROOT } from '../../src/schema';
import { productionPackages } from '../../../scripts/prod-deps';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
type Obj = Record<string, unknown>;

function bash(script: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [path.join(ROOT, script), ...args],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, stdout, stderr }),
    );
  });
}

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as Parameters<
  typeof productionPackages
>[0];

describe('pipeline: the SBOM of each image', function () {
  this.timeout(120_000);
  const out = mkdtempSync(path.join(tmpdir(), 'fnol-sbom-'));
  let run: Run;
  before(async function () {
    run = await bash('pipeline/sbom.sh', ['--out', out]);
  });

  for (const ws of ['scorer', 'operator']) {
    it(`${ws}: CycloneDX, naming the image, listing exactly the packages its npm ci --omit=dev installs`, function () {
      assert.equal(run.code, 0, run.stderr);
      const bom = JSON.parse(readFileSync(path.join(out, `${ws}.cdx.json`), 'utf8')) as {
        bomFormat: string;
        specVersion: string;
        metadata: { component: { name: string } };
        components: { 'bom-ref': string; purl?: string }[];
      };
      assert.equal(bom.bomFormat, 'CycloneDX');
      assert.match(bom.specVersion, /^1\.\d+$/);
      assert.equal(bom.metadata.component.name, `fnol-${ws}`);
      const listed = bom.components.map((c) => c['bom-ref']).filter((r) => !r.startsWith('@fnol/'));
      const installed = productionPackages(lock, ws).map((p) => `${p.name}@${p.version}`);
      assert.deepEqual([...new Set(listed)].sort(), [...new Set(installed)].sort());
      const has = (name: string) => listed.some((r) => r.startsWith(`${name}@`));
      assert.equal(has('onnxruntime-node'), ws === 'scorer', 'onnxruntime-node only in the scorer');
      if (ws === 'operator')
        assert.ok(has('@kubernetes/client-node'), 'client-node missing from the operator SBOM');
      assert.ok(!has('mocha') && !has('esbuild'), 'a development package in the SBOM');
    });
  }
});

describe('pipeline: the operator install rendered from the recorded digests', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'fnol-images-'));
  const scorer = `fnol.azurecr.io/fnol/scorer@${digest('a')}`;
  const operator = `fnol.azurecr.io/fnol/operator@${digest('b')}`;
  const write = (name: string, doc: unknown): string => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return file;
  };

  it('sets the operator image and FNOL_SCORER_IMAGE to the digests of images.json', async function () {
    const run = await bash('pipeline/render-operator-digests.sh', [
      '--images',
      write('images.json', { scorer, operator }),
      '--out',
      '-',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const docs = YAML.parseAllDocuments(run.stdout).map((d) => d.toJS() as Obj);
    const deployment = docs.find(
      (d) => d.kind === 'Deployment' && (d.metadata as Obj).name === 'fnol-operator',
    ) as {
      spec: {
        template: {
          spec: { containers: { name: string; image: string; env?: { name: string; value?: string }[] }[] };
        };
      };
    };
    const container = deployment.spec.template.spec.containers.find((c) => c.name === 'operator')!;
    assert.equal(container.image, operator);
    assert.equal(container.env?.find((e) => e.name === 'FNOL_SCORER_IMAGE')?.value, scorer);
  });

  it('refuses an image by tag, a missing entry, a file that is not JSON, a missing file; naming what to fix', async function () {
    const cases: [string, RegExp][] = [
      [
        write('tag.json', { scorer, operator: 'fnol.azurecr.io/fnol/operator:1234' }),
        /"operator" is "fnol\.azurecr\.io\/fnol\/operator:1234", not an image pinned by digest/,
      ],
      [write('missing.json', { operator }), /"scorer" is undefined, not an image pinned by digest/],
      [write('text.json', 'scorer=x'), /is not JSON/],
      [path.join(dir, 'absent.json'), /does not exist; it is the build's images artifact/],
    ];
    for (const [file, message] of cases) {
      const run = await bash('pipeline/render-operator-digests.sh', ['--images', file, '--out', '-']);
      assert.equal(run.code, 1, `${file}: ${run.stdout}`);
      assert.match(run.stderr, message, file);
      assert.equal(run.stdout, '', `${file}: something was rendered`);
    }
  });
});

describe('pipeline: the image scan refuses what it cannot trust, before scanning', function () {
  it('a known malicious Trivy release, an unknown engine, no image: exit 1 naming the problem', async function () {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ['fnol/scorer:1'],
        { TRIVY_IMAGE: 'docker.io/aquasec/trivy:0.69.4' },
        /known malicious Trivy release; pin another/,
      ],
      [['--engine', 'nerdctl', 'fnol/scorer:1'], {}, /--engine must be docker or podman, not nerdctl/],
      [[], {}, /usage: pipeline\/scan-images\.sh/],
    ];
    for (const [args, env, message] of cases) {
      const run = await new Promise<Run>((resolve) => {
        execFile(
          'bash',
          [path.join(ROOT, 'pipeline/scan-images.sh'), ...args],
          { cwd: ROOT, env: { ...process.env, ...env } },
          (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, stdout, stderr }),
        );
      });
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.doesNotMatch(run.stdout, /scanning/, `${args.join(' ')}: it started scanning`);
    }
  });
});
