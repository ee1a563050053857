/**
 * Shared pieces of the operator's integration suites: the real local cluster
 * (test/support/cluster.ts), the CRD installed from crds/, an operator started
 * in-process or as a child process, a model file server on loopback and polling
 * helpers.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { crdPath, repoRoot } from '../../../test/support/repo';
import { API_VERSION, CRD_NAME, type FnolModel, KIND } from '@fnol/api';
import { RunningOperator, startOperator } from '../../src/app';
import { modelPath } from '../../src/controller';
import { KubeClient } from '../../src/kube/client';
import { Cluster, useCluster } from '../../../test/support/cluster';
import { selfSignedCert } from '../../../test/support/tls';

export { modelPath };

/** Starts (or reuses) the cluster and installs the CRD; resolves once it is Established. */
export async function clusterWithCrd(ctx: Mocha.Context): Promise<Cluster> {
  const cluster = await useCluster(ctx);
  await installCrd(cluster, 'fnol-tests');
  return cluster;
}

/** Applies crds/fnolmodel.yaml (server-side, as `fieldManager`) and waits until it is Established. */
export async function installCrd(cluster: Cluster, fieldManager: string): Promise<void> {
  await cluster.kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    `--field-manager=${fieldManager}`,
    '-f',
    crdPath,
  ]);
  await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${CRD_NAME}`]);
}

/**
 * Waits until kube-controller-manager's garbage collector watches FnolModels.
 * The collector re-reads the API's resource list every 30 s, so for up to 30 s
 * after the CRD is created it does not see a FnolModel's deletion, and the
 * owned objects may outlive it by far longer (its retries back off). Returns
 * at once on a cluster whose CRD is older than that.
 */
export async function untilGarbageCollectorWatchesCrd(client: KubeClient): Promise<void> {
  const crd = await client.get<{ metadata?: { creationTimestamp?: string } }>(
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`,
  );
  const created = Date.parse(String(crd?.metadata?.creationTimestamp ?? ''));
  if (Number.isNaN(created)) throw new Error(`the CRD ${CRD_NAME} has no creationTimestamp`);
  // 30 s discovery period, 5 s for the new watch to list and sync.
  const wait = created + 35_000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

export function adminClient(cluster: Cluster): KubeClient {
  return new KubeClient(cluster.kubeConfig);
}

/** Polls fn until it returns a value other than undefined/false; fails with the last observation. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Serves model files over real HTTP (or HTTPS with a throw-away CA) on 127.0.0.1. */
export class ModelServer {
  private readonly files = new Map<string, Buffer>();
  private server: http.Server | undefined;
  requests = 0;
  /** Query string of the last request (where a SAS token arrives). */
  lastQuery = '';
  /** PEM file of the self-signed certificate, when started with TLS. */
  caFile = '';

  constructor(private readonly useTls = false) {}

  async start(): Promise<void> {
    const handler: http.RequestListener = (req, res) => {
      this.requests++;
      const u = new URL(req.url ?? '/', 'http://x');
      this.lastQuery = u.search;
      const p = u.pathname;
      const body = this.files.get(p);
      if (body) res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(body);
      else res.writeHead(404).end('not found');
    };
    if (this.useTls) {
      const tls = selfSignedCert(
        mkdtempSync(path.join(tmpdir(), 'fnol-model-tls-')),
        '127.0.0.1',
        'IP:127.0.0.1',
      );
      this.caFile = tls.certFile;
      this.server = https.createServer({ key: tls.key, cert: tls.cert }, handler);
    } else {
      this.server = http.createServer(handler);
    }
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
  }

  /** Publishes bytes at /name and returns the uri and sha256 a FnolModel would use. */
  publish(name: string, content: Buffer | string): { uri: string; sha256: string } {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    this.files.set(`/${name}`, body);
    const port = (this.server!.address() as AddressInfo).port;
    return {
      uri: `${this.useTls ? 'https' : 'http'}://127.0.0.1:${port}/${name}`,
      sha256: createHash('sha256').update(body).digest('hex'),
    };
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections();
  }
}

/** The test model servers listen on loopback, over http or https: the operator's local mode. */
export const LOCAL_MODEL_STORE = { MODEL_LOCAL_MODE: 'true', MODEL_ALLOWED_HOSTS: '127.0.0.1' };

/** An operator in this process, watching one namespace, leader election off. */
export async function inProcessOperator(
  kubeConfig: KubeConfig,
  namespace: string,
  env: Record<string, string> = {},
): Promise<RunningOperator> {
  return startOperator({
    kubeConfig,
    logger: pino({ level: process.env.FNOL_TEST_OPERATOR_LOG ?? 'silent' }),
    env: {
      WATCH_NAMESPACE: namespace,
      LEADER_ELECTION: 'false',
      HEALTH_PORT: '0',
      HEALTH_HOST: '127.0.0.1',
      FNOL_SCORER_IMAGE: 'fnol-scorer:test',
      PROGRESS_DEADLINE_SECONDS: '60',
      RESYNC_PERIOD_SECONDS: '60',
      POD_NAME: `test-${namespace}`,
      ...LOCAL_MODEL_STORE,
      ...env,
    },
  });
}

export interface ChildOperator {
  proc: ChildProcess;
  logs: string[];
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

/** The operator as its own process (npm run operator's entry point), for kill and failover tests. */
export function childOperator(
  env: Record<string, string>,
  compiledEntry?: string,
  nodeArgs: string[] = [],
): ChildOperator {
  const logs: string[] = [];
  const proc = spawn(
    process.execPath,
    // A compiled entry in the repository loads the compiled workspace packages
    // (@fnol/api, @fnol/model-fetch) from dist/ too, as the image does
    // (docs/adr/0008-workspaces-and-api-module.md). nodeArgs go to node itself
    // (e.g. --cpu-prof, which NODE_OPTIONS does not take).
    [
      ...nodeArgs,
      ...(compiledEntry
        ? ['--require', path.join(repoRoot, 'test', 'support', 'compiled-workspaces.cjs'), compiledEntry]
        : ['--import', 'tsx', path.join(repoRoot, 'operator', 'src', 'main.ts')]),
    ],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        HEALTH_PORT: '0',
        HEALTH_HOST: '127.0.0.1',
        ...LOCAL_MODEL_STORE,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const collect = (b: Buffer) => {
    for (const line of b.toString('utf8').split('\n')) if (line.trim()) logs.push(line);
    if (logs.length > 2000) logs.splice(0, logs.length - 2000);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  return {
    proc,
    logs,
    kill: (signal = 'SIGKILL') =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill(signal);
      }),
  };
}

export async function getModel(client: KubeClient, ns: string, name: string): Promise<FnolModel | undefined> {
  return client.get<FnolModel>(modelPath(ns, name));
}

export function condition(fm: FnolModel | undefined, type: string) {
  return fm?.status?.conditions?.find((c) => c.type === type);
}

/** A FnolModel manifest with the given model; everything else defaulted by the CRD. */
export function modelManifest(
  ns: string,
  name: string,
  model: { version: string; uri: string; sha256: string },
  spec: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: ns },
    spec: { model, ...spec },
  };
}
