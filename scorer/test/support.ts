// Shared helpers of the scorer's tests: models (the compiled FNOL model and the
// generated fixtures), an in-process scorer on a loopback port, and CatBoost as
// the reference for predictions.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { createApp, systemClock, type Clock } from '../src/app';
import { ApiKeys } from '../src/auth';
import {
  DEFAULT_PREDICTION_BUCKETS,
  defaultOverloadLimits,
  type OverloadLimits,
  type RequestLimits,
  type ShadowConfig,
} from '../src/config';
import { createMetrics, type ScorerMetrics } from '../src/metrics';
import { loadModelRuntime, type ModelRuntime } from '../src/model-runtime';
import type { PayloadLogConfig } from '../src/payload-log/config';
import type { PayloadLog } from '../src/payload-log/payload-log';
import type { RouteModule } from '../src/routes/deps';
import type { RouteTable } from '../src/routes/table';
import type { OidcVerifier } from '../src/oidc';
import { createHttpServer } from '../src/server';
import { ServingState } from '../src/serving-state';

export const ROOT = resolve(__dirname, '../..');
export const PYTHON = join(ROOT, '.venv/bin/python');
export const FNOL_MODEL = join(ROOT, 'build/model/fnol-1.0.0.onnx');
export const FNOL_ARTIFACTS = process.env.FNOL_ARTIFACTS ?? resolve(ROOT, '../shared/fnol');
export const TOLERANCE = (a: number, b: number) => Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b));

const fixtureDir = join(tmpdir(), `scorer-fixtures-${process.pid}`);

/** A small generated ONNX model following docs/model-format.md ('generic' is not FNOL). */
export function fixtureModel(kind: 'generic' | 'fnol'): string {
  const out = join(fixtureDir, `${kind}.onnx`);
  if (!existsSync(out)) {
    mkdirSync(fixtureDir, { recursive: true });
    const run = spawnSync(PYTHON, [join(__dirname, 'fixtures/make_model.py'), kind, out], {
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`cannot generate the ${kind} fixture model: ${run.stderr}`);
  }
  return out;
}

/**
 * A copy of the model at `path` whose metadata says `version` (the same graph
 * published under another version), written next to the generated fixtures.
 */
export function relabelledModel(path: string, version: string): string {
  const out = join(fixtureDir, `relabelled-${version}.onnx`);
  if (!existsSync(out)) {
    mkdirSync(fixtureDir, { recursive: true });
    const script = [
      'import sys, onnx',
      'm = onnx.load(sys.argv[1])',
      '[p for p in m.metadata_props if p.key == "version"][0].value = sys.argv[3]',
      'onnx.save(m, sys.argv[2])',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, path, out, version], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`cannot write the model as version ${version}: ${run.stderr}`);
  }
  return out;
}

/** The compiled FNOL model; built with `npm run model:build` when it is not there yet. */
export function fnolModel(): string {
  if (!existsSync(FNOL_MODEL)) {
    const run = spawnSync('npm', ['run', '-s', 'model:build'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: 'inherit',
    });
    if (run.status !== 0 || !existsSync(FNOL_MODEL)) {
      throw new Error(`${FNOL_MODEL} is missing and npm run model:build did not produce it`);
    }
  }
  return FNOL_MODEL;
}

export interface Oracle {
  rows: unknown[][];
  ultimate_cost: number[];
  attritional_cost: number[];
  large_loss_probability: number[];
}

/** CatBoost's predictions from the delivered .cbm files (scorer/test/fixtures/catboost_oracle.py). */
export function catboost(request: { rows: unknown[][] } | { csv_rows: number }): Oracle {
  const run = spawnSync(PYTHON, [join(__dirname, 'fixtures/catboost_oracle.py')], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    env: { ...process.env, FNOL_ARTIFACTS },
  });
  if (run.status !== 0) throw new Error(`catboost reference failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Oracle;
}

export function testLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

export interface InProcessScorer {
  readonly url: string;
  readonly server: Server;
  readonly state: ServingState;
  readonly metrics: ScorerMetrics;
  readonly runtime: ModelRuntime | undefined;
  /** The route table the app serves. */
  readonly table: RouteTable;
  /** Payload logging, when configured. */
  readonly payloadLog: PayloadLog | undefined;
  close(): Promise<void>;
}

export interface InProcessOptions {
  /** Request limits; the overload limits default to those of a pod with 1 GiB of memory. */
  limits?: Partial<Omit<RequestLimits, 'overload'>> & { overload?: Partial<OverloadLimits> };
  apiKeys?: string[];
  clock?: Clock;
  logger?: Logger;
  /** Leave the state without a model (not ready). */
  noModel?: boolean;
  /** Route modules instead of the scorer's own. */
  routes?: readonly RouteModule[];
  /** Shadow mirroring to a candidate (SHADOW_*). */
  shadow?: ShadowConfig;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** MODEL_VERSION (announced in x-model-version until a model is loaded). */
  modelVersion?: string;
  /** OIDC bearer tokens accepted (OIDC_*). */
  oidc?: OidcVerifier;
  /** Payload logging (PAYLOAD_LOG_*). */
  payloadLog?: PayloadLogConfig;
  /** The model's sha256 as the served state records it. */
  sha256?: string;
}

/** The HTTP app with injected dependencies, on 127.0.0.1 and a free port. */
export async function startInProcess(
  modelPath: string,
  options: InProcessOptions = {},
): Promise<InProcessScorer> {
  const state = new ServingState();
  let runtime: ModelRuntime | undefined;
  if (!options.noModel) {
    runtime = await loadModelRuntime(
      readFileSync(modelPath),
      { name: undefined, version: undefined },
      { intraOpThreads: 1 },
    );
    state.setModel({ runtime, sha256: options.sha256, card: undefined, selfTest: await runtime.selfTest() });
  }
  const metrics = createMetrics(DEFAULT_PREDICTION_BUCKETS, false);
  const maxBodyBytes = options.limits?.maxBodyBytes ?? 1024 * 1024;
  const maxBatchRecords = options.limits?.maxBatchRecords ?? 1000;
  const limits: RequestLimits = {
    maxBodyBytes,
    maxBatchRecords,
    overload: {
      ...defaultOverloadLimits(1024 * 1024 * 1024, maxBodyBytes, maxBatchRecords),
      ...options.limits?.overload,
    },
  };
  const app = createApp({
    state,
    metrics,
    logger: options.logger ?? testLogger(),
    clock: options.clock ?? systemClock,
    limits,
    apiKeys: options.apiKeys === undefined ? undefined : new ApiKeys(options.apiKeys),
    ...(options.routes === undefined ? {} : { routes: options.routes }),
    shadow: options.shadow,
    modelVersion: options.modelVersion,
    oidc: options.oidc,
    payloadLog: options.payloadLog,
  });
  const server = createHttpServer(app);
  await new Promise<void>((done) => server.listen(options.port ?? 0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    state,
    metrics,
    runtime,
    table: app.table,
    payloadLog: app.payloadLog,
    close: async () => {
      app.shadow?.close();
      await app.payloadLog?.close();
      await new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
      await runtime?.session.release?.();
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

export async function call(
  url: string,
  path: string,
  init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const hasBody = init.body !== undefined || init.raw !== undefined;
  const response = await fetch(url + path, {
    method: init.method ?? (hasBody ? 'POST' : 'GET'),
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(hasBody ? { body: init.raw ?? JSON.stringify(init.body) } : {}),
  });
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** The 37 positional values of the original smoke rows: 1..37 and 37..1. */
export const SMOKE_ROWS: number[][] = [
  Array.from({ length: 37 }, (_, i) => i + 1),
  Array.from({ length: 37 }, (_, i) => 37 - i),
];
