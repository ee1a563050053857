// The container images, built by the project's own script (images/build.sh),
// run for real: the scorer container serves the compiled model and answers
// exactly like the scorer run directly; the operator container takes the lease
// on the local cluster and reconciles a FnolModel.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type FnolModel } from '@fnol/api';
import { ModelServer, clusterWithCrd } from '../../operator/test/integration/harness';
import { createTestNamespace, type Cluster } from '../../test/support/cluster';
import { freePort } from '../../test/support/net';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'build/model/fnol-1.0.0.onnx');
const SCORER_IMAGE = 'localhost/fnol-scorer:latest';
const OPERATOR_IMAGE = 'localhost/fnol-operator:latest';
const PODMAN = ['--storage-driver', 'vfs', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
/** How both containers run: host network, bounded limits, read-only, no capabilities, no privilege gain. */
const RESTRICTED = [
  '--network',
  'host',
  '--ulimit',
  'nofile=8192:8192',
  '--ulimit',
  'nproc=4096:4096',
  '--read-only',
  '--cap-drop',
  'ALL',
  '--security-opt',
  'no-new-privileges',
];

const podman = async (...args: string[]): Promise<string> =>
  (await run('podman', [...PODMAN, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout.trim();

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  onTimeout?: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const extra = onTimeout ? `\n${await onTimeout().catch((e: Error) => e.message)}` : '';
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what} ${last}${extra}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const ready = (url: string) => async (): Promise<true | undefined> =>
  (await fetch(url, { signal: AbortSignal.timeout(2000) })).status === 200 ? true : undefined;

const API_KEY = randomBytes(16).toString('hex');

async function post(url: string, body: unknown, key = API_KEY): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** The original smoke test's rows and three claims as named records. */
function exampleRequests(): { data: { data: unknown[][] }; records: { records: Record<string, unknown>[] } } {
  const up = Array.from({ length: 37 }, (_, i) => i + 1);
  const card = JSON.parse(
    readFileSync(path.join(ROOT, 'build/model/fnol-1.0.0.model-card.json'), 'utf8'),
  ) as {
    features: { name: string; type: string; values?: string[] }[];
  };
  const records = [0, 1, 2].map((k) =>
    Object.fromEntries(
      card.features.map((f, i) => [
        f.name,
        f.type === 'string' ? (f.values?.[k % (f.values.length || 1)] ?? 'n/k') : (i + k) % 4,
      ]),
    ),
  );
  return { data: { data: [up, [...up].reverse()] }, records: { records } };
}

describe('container images', function () {
  this.timeout(45 * 60 * 1000);
  const containers: string[] = [];
  let directScorer: ChildProcess | undefined;

  before(async function () {
    assert.ok(existsSync(MODEL), `${MODEL} is missing: npm run model:build`);
    const started = Date.now();
    // The project's build script: base images (cached by content), both images, checks.
    const build = spawn('bash', [path.join(ROOT, 'images/build.sh')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    build.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (process.env.FNOL_TEST_VERBOSE) process.stdout.write(b);
    });
    build.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number>((r) => build.on('exit', (c) => r(c ?? 1)));
    assert.equal(code, 0, `images/build.sh failed:\n${out.slice(-4000)}`);
    assert.match(out, /all image checks passed/);
    console.log(`      images/build.sh: ${Math.round((Date.now() - started) / 1000)}s`);
  });

  after(async function () {
    directScorer?.kill('SIGTERM');
    for (const c of containers) await podman('rm', '-f', c).catch(() => undefined);
  });

  it('gives each build step as many open files as this shell may have (up to 65536), not 1024', async function () {
    // npm ci in a build step reads its whole warm cache at once; with the
    // build's default of 1024 open files it failed now and then with EMFILE.
    const dir = mkdtempSync(path.join(tmpdir(), 'fnol-build-limits-'));
    const script = [
      'set -euo pipefail',
      `source ${JSON.stringify(path.join(ROOT, 'images/lib.sh'))}`,
      'printf "FROM %s\\nRUN echo \\"nofile=\\$(ulimit -Sn):\\$(ulimit -Hn)\\"\\n" "$BASE_IMAGE" >Containerfile',
      'bud --layers=false --isolation chroot --iidfile iid -f Containerfile . 2>&1 | grep "^nofile="',
      'bah rmi "$(cat iid)" >/dev/null',
      'ulimit -Hn',
    ].join('\n');
    const { stdout } = await run('bash', ['-c', script], { cwd: dir }).finally(() =>
      rmSync(dir, { recursive: true, force: true }),
    );
    const [seen, hard] = stdout.trim().split('\n');
    const expected = hard === 'unlimited' ? 65536 : Math.min(Number(hard), 65536);
    assert.equal(seen, `nofile=${expected}:${expected}`);
  });

  it('the scorer container serves the compiled model exactly like the scorer run directly', async function () {
    const [containerPort, directPort] = [await freePort(), await freePort()];
    const name = `fnol-scorer-test-${randomBytes(3).toString('hex')}`;
    containers.push(name);
    const keys = mkdtempSync(path.join(tmpdir(), 'fnol-api-keys-'));
    writeFileSync(path.join(keys, 'keys'), `${API_KEY}\n`);
    chmodSync(keys, 0o755);
    chmodSync(path.join(keys, 'keys'), 0o644);
    await podman(
      'run',
      '-d',
      '--name',
      name,
      ...RESTRICTED,
      '-v',
      `${path.dirname(MODEL)}:/models:ro`,
      '-v',
      `${keys}:/var/run/secrets/fnol/api-key:ro`,
      '-e',
      'API_KEYS_FILE=/var/run/secrets/fnol/api-key/keys',
      '-e',
      'MODEL_URI=file:///models/fnol-1.0.0.onnx',
      '-e',
      'MODEL_VERSION=1.0.0',
      '-e',
      `PORT=${containerPort}`,
      SCORER_IMAGE,
    );
    directScorer = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scorer/src/main.ts')], {
      cwd: ROOT,
      env: {
        ...process.env,
        MODEL_URI: `file://${MODEL}`,
        MODEL_VERSION: '1.0.0',
        PORT: String(directPort),
        API_KEYS_FILE: path.join(keys, 'keys'),
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const inContainer = `http://127.0.0.1:${containerPort}`;
    const direct = `http://127.0.0.1:${directPort}`;
    await until('the scorer container to be ready', ready(`${inContainer}/readyz`), 90_000, () =>
      podman('logs', name),
    );
    await until('the directly run scorer to be ready', ready(`${direct}/readyz`), 90_000);

    // It runs as the image's numeric non-root user.
    const pid = await podman('inspect', '--format', '{{.State.Pid}}', name);
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    assert.equal(uid, '10001');

    const { data, records } = exampleRequests();
    for (const body of [data, records]) {
      const a = await post(`${inContainer}/score`, body);
      const b = await post(`${direct}/score`, body);
      assert.equal(a.status, 200, JSON.stringify(a.json));
      assert.deepEqual(a.json, b.json, 'the container and the direct scorer disagree');
    }
    const result = (await post(`${inContainer}/score`, data)).json as { result: number[] };
    assert.equal(result.result.length, 2);
    assert.ok(
      result.result.every((v) => Number.isFinite(v) && v > 0),
      JSON.stringify(result),
    );
    const bad = await post(`${inContainer}/score`, { data: [[1, 2, 3]] });
    assert.equal(bad.status, 400);
    assert.equal((await post(`${inContainer}/score`, data, 'wrong-key')).status, 401);

    // The pipeline's smoke test against the container.
    const smoke = await run(
      'npx',
      ['tsx', 'cli/src/fnolctl.ts', 'score', '--url', inContainer, '--expect-version', '1.0.0'],
      {
        cwd: ROOT,
        env: { ...process.env, FNOL_API_KEY: API_KEY },
      },
    );
    assert.match(smoke.stdout, /ultimate_cost: [\d.]+, [\d.]+/);
    assert.match(smoke.stdout, /serving model version 1\.0\.0/);
    const wrong = await run(
      'npx',
      ['tsx', 'cli/src/fnolctl.ts', 'score', '--url', inContainer, '--expect-version', '9.9.9'],
      {
        cwd: ROOT,
        env: { ...process.env, FNOL_API_KEY: API_KEY },
      },
    ).then(
      () => assert.fail('score accepted the wrong version'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /serves model version 1\.0\.0, expected 9\.9\.9/);
  });

  describe('the operator container on the local cluster', function () {
    let cluster: Cluster;
    let ns: string;
    const models = new ModelServer();

    before(async function () {
      cluster = await clusterWithCrd(this);
      ns = await createTestNamespace('images');
      await models.start();
    });

    after(async function () {
      await models.stop();
    });

    it('starts, takes the lease and reconciles a FnolModel', async function () {
      const healthPort = await freePort();
      // The container reads a kubeconfig from a private copy (the image's user must read it).
      const dir = mkdtempSync(path.join(tmpdir(), 'fnol-operator-kube-'));
      const kubeconfig = path.join(dir, 'config');
      writeFileSync(kubeconfig, cluster.kubeConfig.exportConfig());
      chmodSync(dir, 0o755);
      chmodSync(kubeconfig, 0o644);
      const name = `fnol-operator-test-${randomBytes(3).toString('hex')}`;
      containers.push(name);
      await podman(
        'run',
        '-d',
        '--name',
        name,
        ...RESTRICTED,
        '-v',
        `${dir}:/kube:ro`,
        '-e',
        'KUBECONFIG=/kube/config',
        '-e',
        `WATCH_NAMESPACE=${ns}`,
        '-e',
        `LEASE_NAMESPACE=${ns}`,
        '-e',
        `POD_NAME=${name}`,
        '-e',
        `HEALTH_PORT=${healthPort}`,
        '-e',
        'HEALTH_HOST=127.0.0.1',
        '-e',
        `FNOL_SCORER_IMAGE=${SCORER_IMAGE}`,
        // The test's model server: plain http on loopback (the operator's local mode).
        '-e',
        'MODEL_LOCAL_MODE=true',
        '-e',
        'MODEL_ALLOWED_HOSTS=127.0.0.1',
        OPERATOR_IMAGE,
      );
      const logs = () => podman('logs', name);
      await until(
        'the operator container to be ready',
        ready(`http://127.0.0.1:${healthPort}/readyz`),
        90_000,
        logs,
      );

      const coord = cluster.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
      const holder = await until(
        'the operator to hold the lease',
        async () =>
          (await coord.readNamespacedLease('fnol-operator', ns)).body.spec?.holderIdentity || undefined,
        60_000,
        logs,
      );
      assert.equal(holder, name);

      const model = models.publish('fnol-1.0.0.onnx', readFileSync(MODEL));
      await cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: 'fnol', namespace: ns },
          spec: { model: { version: '1.0.0', ...model }, replicas: 1 },
        }),
      );
      const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
      const deployment = await until(
        'the operator to create the scorer Deployment',
        async () => (await apps.listNamespacedDeployment(ns)).body.items[0],
        60_000,
        logs,
      );
      assert.equal(deployment.spec?.template.spec?.containers[0]?.image, SCORER_IMAGE);
      const custom = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
      const status = await until(
        'the FnolModel to be Ready',
        async () => {
          const fm = (await custom.getNamespacedCustomObject(GROUP, VERSION, ns, PLURAL, 'fnol'))
            .body as FnolModel;
          return fm.status?.phase === 'Ready' ? fm.status : undefined;
        },
        120_000,
        logs,
      );
      assert.equal(status.activeVersion, '1.0.0');
      assert.ok(models.requests > 0, 'the operator did not verify the model digest');
    });
  });
});
