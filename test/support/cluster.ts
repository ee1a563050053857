/**
 * The local Kubernetes cluster for tests (see docs/local-cluster.md).
 *
 * A real kube-apiserver, etcd, controller manager and scheduler run on
 * 127.0.0.1, with nodes simulated by kwok (pods on them become Running and
 * Ready, but no container runs). Usage in a mocha suite:
 *
 *   import { useCluster, createTestNamespace, type Cluster } from '../../test/support/cluster';
 *
 *   describe('my suite', function () {
 *     let cluster: Cluster;
 *     let ns: string;
 *     before(async function () {
 *       cluster = await useCluster(this); // `this` lets a cold start extend the hook's timeout
 *       ns = await createTestNamespace('my-suite'); // deleted at the end of the run
 *     });
 *     it('...', async () => {
 *       const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
 *     });
 *   });
 *
 * API
 * - useCluster(ctx?): starts the cluster once per process (cluster/up.sh, which
 *   builds the binaries on a cold cache: allow up to CLUSTER_START_TIMEOUT_MS) or
 *   reuses one that is already running. Returns a Cluster: kubeConfig (admin),
 *   kubeconfigPath, binDir (kubectl, kube-apiserver, ... of the pinned version),
 *   kubectl(args, stdin?) and versions.
 * - createTestNamespace(prefix, labels?): creates a namespace with a unique
 *   name `<prefix>-<random>` and returns its name. Every namespace created this
 *   way is deleted when the mocha run ends (or earlier with deleteNamespace).
 * - serviceAccountKubeConfig(namespace, name, durationSeconds?): a kubeconfig
 *   authenticating as that ServiceAccount (TokenRequest API), written to a file;
 *   to run a process (the operator) with exactly that account's RBAC rights.
 *
 * With FNOL_REAL_NODE=1, useCluster also makes sure the real node runs
 * (cluster/node/up.sh; suites opt in to it with its label and taint).
 *
 * Importing this module registers mocha root hooks: the cluster is started
 * before the first suite (so a cold build is not cut short by any suite's hook
 * timeout) and handled as below after the last.
 *
 * Teardown: if the cluster was already running when the run started, it is
 * left running; if this run started it, it is stopped when the mocha run ends
 * (root `after` hook, with a synchronous fallback on process exit). Set
 * FNOL_CLUSTER_KEEP=1 to leave it running anyway (faster repeated runs).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';

/** Upper bound for a cold start: building Kubernetes from source, then starting it. */
export const CLUSTER_START_TIMEOUT_MS = 60 * 60 * 1000;

export interface Cluster {
  /** Cluster-admin credentials (client certificate). */
  kubeConfig: k8s.KubeConfig;
  /** Path of the admin kubeconfig file (.cluster/kubeconfig). */
  kubeconfigPath: string;
  /** Folder holding kubectl, kube-apiserver, etcd, kwok, ... of the pinned version. */
  binDir: string;
  /** Runs the pinned kubectl with the admin kubeconfig; resolves to stdout, rejects with stderr. */
  kubectl(args: string[], stdin?: string): Promise<string>;
  versions: { kubernetes: string; etcd: string; kwok: string };
  /** True when this process started the cluster (and will stop it at the end). */
  startedByThisRun: boolean;
}

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPTS = path.join(ROOT, 'cluster');

let clusterPromise: Promise<Cluster> | undefined;
let startedHere = false;
let stopped = false;
const namespaces = new Set<string>();

interface StatusEnv {
  ready: boolean;
  env: Record<string, string>;
}

function status(): StatusEnv {
  const res = spawnSync('bash', [path.join(SCRIPTS, 'status.sh'), '--env'], { encoding: 'utf8' });
  if (res.error) throw new Error(`cannot run cluster/status.sh: ${res.error.message}`);
  const env: Record<string, string> = {};
  for (const line of res.stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return { ready: res.status === 0, env };
}

function runScript(script: string, args: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    // Progress of a cold build goes straight to the test output.
    const child = spawn('bash', [path.join(SCRIPTS, script), ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `cluster/${script} failed (${signal ?? `exit code ${code}`}); see its output above and .cluster/logs/`,
          ),
        );
    });
  });
}

async function start(): Promise<Cluster> {
  let st = status();
  if (!st.ready) {
    await runScript('up.sh');
    startedHere = process.env.FNOL_CLUSTER_KEEP !== '1';
    st = status();
  } else if (process.env.FNOL_REAL_NODE === '1') {
    // Adds the real node to the running cluster if it is not there yet.
    await runScript('up.sh');
    st = status();
    if (!st.ready)
      throw new Error(
        'cluster/up.sh finished but the API server is not ready; see .cluster/logs/kube-apiserver.log',
      );
  }
  const env = st.env;
  const kubeconfigPath = env.KUBECONFIG ?? path.join(ROOT, '.cluster', 'kubeconfig');
  const binDir = env.K8S_BIN ?? '';
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const kubectlBin = path.join(binDir, 'kubectl');
  return {
    kubeConfig,
    kubeconfigPath,
    binDir,
    versions: {
      kubernetes: env.K8S_VERSION ?? '',
      etcd: env.ETCD_VERSION ?? '',
      kwok: env.KWOK_VERSION ?? '',
    },
    startedByThisRun: startedHere,
    kubectl: (args, stdin) =>
      new Promise((resolve, reject) => {
        const child = execFile(
          kubectlBin,
          ['--kubeconfig', kubeconfigPath, ...args],
          { maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => {
            if (err) reject(new Error(`kubectl ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
            else resolve(stdout);
          },
        );
        if (stdin !== undefined) child.stdin?.end(stdin);
        else child.stdin?.end();
      }),
  };
}

/**
 * Starts the local cluster, or reuses the running one. Pass the mocha context
 * (`this` in a `before` hook) so that a cold start, which builds Kubernetes,
 * is not cut short by the hook's timeout.
 */
export function useCluster(ctx?: Mocha.Context): Promise<Cluster> {
  if (ctx) ctx.timeout(CLUSTER_START_TIMEOUT_MS);
  if (!clusterPromise) {
    clusterPromise = start();
    clusterPromise.catch(() => {
      clusterPromise = undefined;
    });
  }
  return clusterPromise;
}

/** Creates a namespace `<prefix>-<random>` (deleted at the end of the run) and returns its name. */
export async function createTestNamespace(
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  if (!/^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$/.test(prefix)) {
    throw new Error(
      `namespace prefix '${prefix}' is not a short DNS label (lower-case letters, digits and '-', at most 42 characters)`,
    );
  }
  const cluster = await useCluster();
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ metadata: { name, labels: { 'fnol.local/test': 'true', ...labels } } });
  namespaces.add(name);
  return name;
}

/** Deletes a namespace made by createTestNamespace without waiting for its contents to go. */
export async function deleteNamespace(name: string): Promise<void> {
  namespaces.delete(name);
  const cluster = await useCluster();
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  try {
    await core.deleteNamespace(name, undefined, undefined, undefined, undefined, 'Background');
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

/**
 * Writes a kubeconfig that authenticates as ServiceAccount namespace/name with a
 * bound token from the TokenRequest API and returns it with its file path.
 */
export async function serviceAccountKubeConfig(
  namespace: string,
  name: string,
  durationSeconds = 3600,
): Promise<{ kubeConfig: k8s.KubeConfig; path: string }> {
  const cluster = await useCluster();
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const audience = 'https://kubernetes.default.svc.cluster.local';
  const { body } = await core.createNamespacedServiceAccountToken(name, namespace, {
    spec: { audiences: [audience], expirationSeconds: durationSeconds },
  });
  const token = body.status?.token;
  if (!token) throw new Error(`the API server returned no token for ServiceAccount ${namespace}/${name}`);
  const admin = cluster.kubeConfig.getCurrentCluster();
  if (!admin) throw new Error(`the admin kubeconfig ${cluster.kubeconfigPath} has no current cluster`);
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fnol-local', server: admin.server, caData: admin.caData, skipTLSVerify: false }],
    users: [{ name: `${namespace}-${name}`, token }],
    contexts: [{ name: 'fnol-local', cluster: 'fnol-local', user: `${namespace}-${name}`, namespace }],
    currentContext: 'fnol-local',
  });
  const dir = path.join(path.dirname(cluster.kubeconfigPath), 'kubeconfigs');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `sa-${namespace}-${name}.kubeconfig`);
  writeFileSync(file, kubeConfig.exportConfig(), { mode: 0o600 });
  return { kubeConfig, path: file };
}

async function cleanUp(): Promise<void> {
  if (!clusterPromise || stopped) return;
  for (const ns of [...namespaces]) {
    await deleteNamespace(ns).catch((err: Error) =>
      console.error(`could not delete test namespace ${ns}: ${err.message}`),
    );
  }
  if (startedHere) {
    stopped = true;
    await runScript('down.sh');
  }
}

// Root-level hooks, registered when a test file imports this module during
// mocha's loading phase (outside mocha, in a plain script, there are none): the
// cluster starts before the first suite, with a timeout long enough for a cold
// build whatever timeout the suites' own hooks have, and stops after the last.
if (typeof before === 'function' && typeof after === 'function') {
  before(async function () {
    await useCluster(this);
  });
  after(async function () {
    this.timeout(120_000);
    await cleanUp();
  });
}
process.on('exit', () => {
  if (startedHere && !stopped) spawnSync('bash', [path.join(SCRIPTS, 'down.sh')], { stdio: 'inherit' });
});
