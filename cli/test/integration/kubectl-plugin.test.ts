// The bundled fnolctl (build/kubectl-fnol) as a user gets it: one file copied
// alone into an empty folder, with no node_modules beside it or above it, run
// with only Node on PATH; found by the local cluster's real kubectl as the
// plugin `kubectl fnol`; and promoting and reading a FnolModel on the real API
// server with the kubeconfig, context and namespace flags.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { FnolModel } from '@fnol/api';
import type { RunningOperator } from '../../../operator/src/app';
import {
  ModelServer,
  clusterWithCrd,
  inProcessOperator,
  modelManifest,
} from '../../../operator/test/integration/harness';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import { bundle } from '../../scripts/bundle';
import { COMMANDS } from '../../src/fnolctl';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args` with nothing but `dir` and Node's folder on PATH, in `dir`. */
function runIn(dir: string, file: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: dir,
        // No NODE_PATH, no KUBECONFIG, no npm: what a machine with only Node has.
        env: { PATH: `${dir}:${path.dirname(process.execPath)}`, HOME: dir, ...env },
        timeout: 240_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('kubectl fnol: the bundled executable alone, as a kubectl plugin, against the API server', function () {
  this.timeout(300_000);
  let dir: string;
  let exe: string;
  let kubectl: string;
  let cluster: Cluster;
  let ns: string;
  let operator: RunningOperator | undefined;
  const models = new ModelServer();
  const bundleSeconds: number[] = [];

  before(async function () {
    const started = Date.now();
    const built = await bundle(
      path.join(mkdtempSync(path.join(tmpdir(), 'fnolctl-bundle-')), 'kubectl-fnol'),
    );
    bundleSeconds.push((Date.now() - started) / 1000);
    dir = mkdtempSync(path.join(tmpdir(), 'kubectl-fnol-alone-'));
    exe = path.join(dir, 'kubectl-fnol');
    copyFileSync(built.file, exe);
    writeFileSync(path.join(dir, '.keep'), '');
    cluster = await clusterWithCrd(this);
    kubectl = path.join(cluster.binDir, 'kubectl');
    ns = await createTestNamespace('kubectl-fnol');
    await models.start();
    operator = await inProcessOperator(cluster.kubeConfig, ns);
  });

  after(async function () {
    await operator?.stop();
    await models.stop();
    console.log(`      bundle built in ${bundleSeconds[0]?.toFixed(1)} s`);
  });

  it('the folder holds the one file and no node_modules is reachable from it', function () {
    assert.deepEqual(readdirSync(dir).sort(), ['.keep', 'kubectl-fnol']);
    for (let d = dir; ; d = path.dirname(d)) {
      assert.ok(!existsSync(path.join(d, 'node_modules')), `${d}/node_modules would let the bundle cheat`);
      if (path.dirname(d) === d) break;
    }
  });

  it('--help, --version and every command --help work from the bare file', async function () {
    const help = await runIn(dir, exe, ['--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const name of Object.keys(COMMANDS)) assert.match(help.stdout, new RegExp(`^  ${name} `, 'm'));
    assert.match(help.stdout, /exit codes: 0 done, 1 error, 2 bad usage/);

    const version = await runIn(dir, exe, ['--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout.trim(), /^fnolctl \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown)\)$/);

    for (const name of Object.keys(COMMANDS)) {
      const own = await runIn(dir, exe, [name, '--help']);
      assert.equal(own.code, 0, `${name} --help: ${own.stderr}`);
      assert.match(own.stdout, new RegExp(`^usage: fnolctl ${name} `), name);
      assert.match(own.stdout, /--kubeconfig FILE/, `${name} --help lists the global options`);
    }
    const promoteHelp = await runIn(dir, exe, ['promote', '-h']);
    assert.match(promoteHelp.stdout, /--model-version V/);

    // Bad usage: exit 2 and a message that says what to do instead.
    const old = await runIn(dir, exe, ['promote', 'fnol', '--version', '1.1.0']);
    assert.equal(old.code, 2);
    assert.match(old.stderr, /the model version to promote is --model-version/);
    const unknown = await runIn(dir, exe, ['status', 'fnol', '--frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown option '--frobnicate'/);
    const noKubeconfig = await runIn(dir, exe, ['status', 'fnol']);
    assert.equal(noKubeconfig.code, 1);
    assert.match(noKubeconfig.stderr, /no kubeconfig: pass --kubeconfig FILE, set KUBECONFIG/);
  });

  it('kubectl finds it on PATH: kubectl fnol --help and --version', async function () {
    const list = await runIn(dir, kubectl, ['plugin', 'list']);
    assert.match(list.stdout, new RegExp(`${exe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), list.stderr);
    const direct = await runIn(dir, exe, ['--help']);
    const plugin = await runIn(dir, kubectl, ['fnol', '--help']);
    assert.equal(plugin.code, 0, plugin.stderr);
    assert.equal(plugin.stdout, direct.stdout);
    const version = await runIn(dir, kubectl, ['fnol', '--version']);
    assert.match(version.stdout, /^fnolctl \d+\.\d+\.\d+ /);
    const status = await runIn(dir, kubectl, ['fnol', 'status', '--help']);
    assert.match(status.stdout, /^usage: fnolctl status /);
  });

  it('promote and status through kubectl fnol with --kubeconfig, --context and the context namespace', async function () {
    const v1 = { version: '1.0.0', ...models.publish('fnol-1.0.0.onnx', randomBytes(4096)) };
    const v2 = { version: '1.1.0', ...models.publish('fnol-1.1.0.onnx', randomBytes(4096)) };
    await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(modelManifest(ns, 'fnol', v1)));

    // A kubeconfig with two contexts: the current one points nowhere, the other
    // is the local cluster with this test's namespace as its default.
    const admin = parseYaml(readFileSync(cluster.kubeconfigPath, 'utf8')) as {
      clusters: { name: string }[];
      contexts: { name: string; context: { cluster: string; user: string } }[];
      'current-context': string;
    };
    const real = admin.contexts.find((c) => c.name === admin['current-context'])!.context;
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'kubectl-fnol-kc-')), 'config');
    writeFileSync(
      file,
      stringifyYaml({
        ...admin,
        clusters: [...admin.clusters, { name: 'nowhere', cluster: { server: 'https://127.0.0.1:1' } }],
        contexts: [
          { name: 'tests', context: { ...real, namespace: ns } },
          { name: 'elsewhere', context: { cluster: 'nowhere', user: real.user } },
        ],
        'current-context': 'elsewhere',
      }),
      { mode: 0o600 },
    );

    const promoted = await runIn(dir, kubectl, [
      'fnol',
      'promote',
      'fnol',
      '--kubeconfig',
      file,
      '--context',
      'tests',
      '--model-version',
      v2.version,
      '--uri',
      v2.uri,
      '--sha256',
      v2.sha256,
      '--timeout',
      '120',
      '-o',
      'json',
    ]);
    assert.equal(promoted.code, 0, `${promoted.stdout}\n${promoted.stderr}`);
    // -o json: the document alone on stdout, the progress on stderr.
    const doc = JSON.parse(promoted.stdout) as FnolModel;
    assert.equal(doc.metadata.namespace, ns);
    assert.equal(doc.spec.model.version, '1.1.0');
    assert.equal(doc.status?.activeVersion, '1.1.0');
    assert.match(promoted.stderr, /1\.0\.0 -> 1\.1\.0/);

    const yaml = await runIn(dir, exe, ['status', 'fnol', '-o', 'yaml', '--context', 'tests'], {
      KUBECONFIG: file,
    });
    assert.equal(yaml.code, 0, yaml.stderr);
    const parsed = parseYaml(yaml.stdout) as FnolModel;
    assert.equal(parsed.status?.phase, 'Ready');
    assert.equal(parsed.status?.activeVersion, '1.1.0');

    const table = await runIn(dir, exe, ['status', 'fnol', '-o', 'table', '--context', 'tests'], {
      KUBECONFIG: file,
    });
    assert.equal(table.code, 0, table.stderr);
    const [header, row, ...more] = table.stdout.trimEnd().split('\n');
    assert.match(header!, /^NAMESPACE\s+NAME\s+SPEC\s+ACTIVE\s+PHASE\s+READY\s+CANARY\s+URL$/);
    assert.match(row!, new RegExp(`^${ns}\\s+fnol\\s+1\\.1\\.0\\s+1\\.1\\.0\\s+Ready\\s+`));
    assert.deepEqual(more, []);

    // The current context points nowhere: without --context the command fails,
    // naming the connection problem; an unknown context is a usage error.
    const wrong = await runIn(dir, exe, ['status', 'fnol', '-n', ns, '--kubeconfig', file]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /reading FnolModel .*is the cluster in KUBECONFIG reachable\?|ECONNREFUSED/);
    const unknown = await runIn(dir, exe, ['status', 'fnol', '--kubeconfig', file, '--context', 'prod']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--context prod is not in the kubeconfig; its contexts: tests, elsewhere/);
  });
});
