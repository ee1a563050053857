// Starts a scorer: HTTP server first (so liveness answers while the model
// downloads), then the model, its self-test, and readiness. Stops gracefully.

import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp, systemClock, type Clock } from './app';
import { ApiKeys, watchApiKeysFile } from './auth';
import type { ScorerConfig } from './config';
import { startDrift } from './drift';
import { createMetrics, type ScorerMetrics } from './metrics';
import { loadModelRuntime } from './model-runtime';
import { describeUri, fetchModel } from './model-source';
import { OidcVerifier } from './oidc';
import { ServingState } from './serving-state';

export interface RunningScorer {
  readonly server: Server;
  readonly state: ServingState;
  readonly metrics: ScorerMetrics;
  /** Base URL on loopback, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish, closes within the grace period. */
  shutdown(): Promise<void>;
}

export interface ScorerDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly sleep?: (ms: number) => Promise<void>;
}

export async function startScorer(config: ScorerConfig, deps: ScorerDeps): Promise<RunningScorer> {
  const { logger } = deps;
  const clock = deps.clock ?? systemClock;
  const state = new ServingState();
  const metrics = createMetrics(config.predictionBuckets);
  const apiKeys =
    config.apiKeysFile === undefined ? undefined : ApiKeys.parse(readFileSync(config.apiKeysFile, 'utf8'));
  if (apiKeys !== undefined && apiKeys.size === 0) {
    throw new Error(
      `API_KEYS_FILE ${config.apiKeysFile} holds no key; put one key per line or unset API_KEYS_FILE`,
    );
  }
  const keyWatch =
    apiKeys === undefined || config.apiKeysFile === undefined
      ? undefined
      : watchApiKeysFile(config.apiKeysFile, apiKeys, {
          intervalMs: config.apiKeysReloadSeconds * 1000,
          logger,
        });
  const app = createApp({
    state,
    logger,
    clock,
    metrics,
    limits: config.limits,
    apiKeys,
    oidc: config.oidc === undefined ? undefined : new OidcVerifier(config.oidc),
    shadow: config.shadow,
    modelVersion: config.model.version,
    payloadLog: config.payloadLog,
    tracing: config.tracing,
  });
  if (config.shadow !== undefined) {
    const { url, percent, version, queueSize, concurrency, timeoutMs } = config.shadow;
    logger.info(
      { target: url.href, percent, version, queueSize, concurrency, timeoutMs },
      'mirroring answered scoring requests to the candidate',
    );
  }
  const server = createHttpServer(app);
  await new Promise<void>((resolve, reject) => {
    const refused = (error: Error) => {
      keyWatch?.stop();
      reject(error);
    };
    server.once('error', refused);
    server.listen(config.port, config.host, () => {
      server.off('error', refused);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  logger.info({ port, host: config.host, auth: apiKeys !== undefined }, 'listening');

  const stop = stopper(server, state, clock, logger, config.shutdownGraceSeconds * 1000);
  const shutdown = async () => {
    keyWatch?.stop();
    await stop();
    app.shadow?.close();
    await app.payloadLog?.close();
    await app.spans?.close();
  };
  try {
    const fetched = await fetchModel(config.model, { logger, ...(deps.sleep ? { sleep: deps.sleep } : {}) });
    const runtime = await loadModelRuntime(fetched.bytes, config.model, {
      intraOpThreads: config.intraOpThreads,
    });
    const selfTest = await runtime.selfTest();
    state.setModel({ runtime, sha256: fetched.sha256, card: fetched.card, selfTest });
    const { name, version, features, outputs } = runtime.contract;
    if (!selfTest.passed) {
      throw new Error(
        `model ${name} ${version} failed its self-test (metadata self_test):\n  ${selfTest.mismatches.join('\n  ')}`,
      );
    }
    // After the self-test, so its records are not counted as traffic.
    startDrift(runtime, config.drift, { metrics: metrics.drift, clock, logger });
    logger.info(
      {
        model: name,
        version,
        sha256: fetched.sha256,
        uri: describeUri(config.model.uri),
        features: features.length,
        outputs: outputs.map((o) => o.name),
      },
      'model loaded, self-test passed, ready',
    );
  } catch (error) {
    state.setFailure(String(error));
    keyWatch?.stop();
    app.shadow?.close();
    void app.payloadLog?.close();
    void app.spans?.close(); // nothing was served: nothing to wait for
    server.close();
    server.closeAllConnections();
    throw error;
  }
  return { server, state, metrics, url: `http://127.0.0.1:${port}`, shutdown };
}

/**
 * The HTTP server with the scorer's timeouts: idle keep-alive connections live
 * longer than the usual 60 s of load balancers (so the balancer, not the scorer,
 * closes them), headers must arrive within 20 s and a whole request within 60 s.
 */
export function createHttpServer(listener: RequestListener): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 60_000 }, listener);
  server.headersTimeout = 20_000;
  return server;
}

/**
 * The drain after SIGTERM. The listening socket closes (new connections are
 * refused), readiness turns 503, and every connection already open keeps being
 * served for the drain window (SHUTDOWN_GRACE_SECONDS): each answer carries
 * `Connection: close` and its connection closes right after it. Idle keep-alive
 * connections stay open through the window, since their client may be sending
 * on one at this very moment (closing it would reset that request); at the end
 * of the window the remaining ones are closed. The process exits as soon as no
 * connection is left.
 */
function stopper(server: Server, state: ServingState, clock: Clock, logger: Logger, graceMs: number) {
  let closing: Promise<void> | undefined;
  return (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      state.startDraining(clock.now());
      logger.info({ graceSeconds: graceMs / 1000 }, 'shutting down: not ready, finishing in-flight requests');
      const window = setTimeout(() => {
        logger.info('drain window over: closing the remaining connections');
        server.closeAllConnections();
      }, graceMs);
      // http.Server#close would also close the idle keep-alive connections at
      // once; net.Server#close only stops accepting.
      netClose.call(server, () => {
        clearTimeout(window);
        logger.info('all connections closed');
        resolve();
      });
    });
    return closing;
  };
}

const netClose = NetServer.prototype.close as (this: Server, callback: () => void) => Server;
