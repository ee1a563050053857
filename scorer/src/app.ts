// The scorer's HTTP layer. It receives every dependency (serving state, logger,
// clock, metrics, limits, API keys) so tests can start it in-process.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ApiKeys } from './auth';
import type { RequestLimits } from './config';
import { HttpError, errorBody } from './http-errors';
import type { ScorerMetrics } from './metrics';
import { outputValue, outputValues, type OutputSpec, type OutputValue } from './model-contract';
import { CancelledError, type Outputs } from './model-runtime';
import { buildOpenApi } from './openapi';
import { OverloadGuard, type Admission, type ExpiryListener } from './overload';
import { JsonLimitError, RequestBodies, type JsonShapeLimits } from './request-body';
import type { ServedModel, ServingState } from './serving-state';
import { V2Codec } from './v2';

export interface Clock {
  /** Monotonic milliseconds, for durations. */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

export interface AppDeps {
  readonly state: ServingState;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: ScorerMetrics;
  readonly limits: RequestLimits;
  readonly apiKeys: ApiKeys | undefined;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** Per-model objects the handlers need, built once per served model. */
interface ModelView {
  readonly model: ServedModel;
  readonly v2: V2Codec;
  readonly openapi: object;
  readonly primaryHistogram: { observe(value: number): void };
  /** Structure limits of a request body for this model (undefined: guard off). */
  readonly shape: JsonShapeLimits | undefined;
}

/** Where a response keeps its admission, released when the response closes. */
const ADMISSION = Symbol('admission');
type AdmittedResponse = ServerResponse & { [ADMISSION]?: Admission };

/** One scoring request on its way: its admission (bytes held, deadline) and progress. */
interface Scoring extends ExpiryListener {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  admission: Admission | undefined;
  bodyArrived: boolean;
}

/**
 * The request listener of the scorer. POST /score, the hot path, is handled on
 * plain node:http objects; every other route goes through express.
 */
export function createApp(deps: AppDeps): RequestListener {
  const { state, logger, clock, metrics, limits, apiKeys } = deps;
  const guard = limits.overload.enabled ? new OverloadGuard(limits.overload, metrics.refused) : undefined;
  // A refused body is thrown away up to MAX_BODY_BYTES before the connection closes.
  const bodies = new RequestBodies(limits.maxBodyBytes);
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);

  let view: ModelView | undefined;
  const served = (): ModelView => {
    const model = state.model;
    if (model === undefined) {
      throw new HttpError(503, `not ready: ${state.notReadyReason}; retry shortly`, undefined, {
        'retry-after': '1',
      });
    }
    if (view?.model !== model) {
      const contract = model.runtime.contract;
      view = {
        model,
        v2: new V2Codec(contract, model.runtime.validators, limits.maxBatchRecords),
        openapi: buildOpenApi(contract, model.runtime.validators.schemas, apiKeys !== undefined),
        primaryHistogram: metrics.predictions.labels(contract.primaryOutput),
        shape:
          guard === undefined
            ? undefined
            : {
                maxDepth: limits.overload.maxJsonDepth,
                // A v2 request nested as [N, 1] holds an array per value.
                maxContainers: limits.maxBatchRecords * (contract.features.length + 2) + 64,
                containersHint: `a request holds at most ${limits.maxBatchRecords} records (MAX_BATCH_RECORDS); split the request`,
              },
      };
      metrics.modelInfo.reset();
      metrics.modelInfo.labels(contract.name, contract.version, model.sha256 ?? '').set(1);
    }
    return view;
  };
  const authorize = (req: IncomingMessage): void => {
    if (apiKeys !== undefined && !apiKeys.accepts(req.headers)) {
      throw new HttpError(
        401,
        'missing or unknown API key: send it as x-api-key: KEY or Authorization: Bearer KEY',
        undefined,
        { 'www-authenticate': 'Bearer' },
      );
    }
  };
  const observe = (outputs: Outputs, v: ModelView) => {
    const primary = outputs[v.model.runtime.contract.primaryOutput] as Float32Array;
    for (let i = 0; i < primary.length; i++) v.primaryHistogram.observe(primary[i] as number);
  };

  // Responses not yet sent: when draining starts they get Connection: close, so
  // their client opens its next connection elsewhere.
  const unanswered = new Set<ServerResponse>();
  state.onDraining(() => {
    for (const res of unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
  });
  /** One listener shared by every response (no closure per request). */
  function responseClosed(this: AdmittedResponse): void {
    unanswered.delete(this);
    this[ADMISSION]?.release();
  }
  /** A scoring request whose deadline passed: 503, or 408 while its body is still arriving. */
  function expire(this: Scoring): void {
    if (!this.res.headersSent && guard) fail(this.req, this.res, guard.expired(this.bodyArrived), 'deadline');
  }

  /** Request id, draining, access log and metrics for one request; returns the id. */
  const instrument = (req: IncomingMessage, res: ServerResponse, path: string): string => {
    const start = clock.now();
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', id);
    if (state.draining) res.setHeader('connection', 'close');
    else unanswered.add(res);
    if (logger.isLevelEnabled('trace'))
      logger.trace({ reqId: id, method: req.method, path }, 'request received');
    res.on('close', responseClosed);
    res.on('finish', () => {
      const route = routeLabel(path);
      const seconds = (clock.now() - start) / 1000;
      const entry = { reqId: id, method: req.method, route, status: res.statusCode, ms: seconds * 1000 };
      if (notReadyProbe(route, res.statusCode)) {
        // Not ready while loading or draining is the probe's answer, not a failure.
        if (logger.isLevelEnabled('debug')) logger.debug(entry, 'not ready');
        return;
      }
      metrics.requests.labels(route, req.method ?? '', String(res.statusCode)).inc();
      metrics.latency.labels(route).observe(seconds);
      const error = errors.get(res);
      if (res.statusCode >= 500 && !REFUSALS.has(res.statusCode)) {
        logger.error({ ...entry, error }, 'request failed');
      } else if (res.statusCode >= 400) {
        logger[REFUSALS.has(res.statusCode) ? 'warn' : 'info']({ ...entry, error }, 'request rejected');
      } else if (logger.isLevelEnabled('debug')) logger.debug(entry, 'request');
    });
    return id;
  };
  const errors = new WeakMap<ServerResponse, string>();

  /** Answers an error: a client's mistake with its status, anything else as a logged 500. */
  const fail = (req: IncomingMessage, res: ServerResponse, error: unknown, path: string): void => {
    let httpError: HttpError;
    if (error instanceof HttpError) {
      httpError = error;
    } else if (isClientError(error)) {
      httpError = new HttpError(error.status, error.expose && error.message ? error.message : 'bad request');
    } else {
      logger.error({ reqId: res.getHeader('x-request-id'), err: error, path }, 'unexpected error');
      httpError = new HttpError(500, 'internal error; the request id is in the x-request-id header');
    }
    if (res.headersSent) {
      // Answered already (the deadline passed first); a half-sent answer is cut.
      if (!res.writableEnded) res.destroy();
      return;
    }
    errors.set(res, httpError.message);
    // A body nobody will read: thrown away up to MAX_BODY_BYTES, so the answer
    // reaches a client that is still sending and no client streams without end.
    bodies.discardRest(req, res);
    for (const [name, value] of Object.entries(httpError.headers)) res.setHeader(name, value);
    sendJson(res, httpError.status, errorBody(httpError));
  };

  /**
   * The common part of POST /score and v2 infer once the key and the model are
   * checked: admission by the overload guard (with its deadline), then the body
   * within its limits.
   */
  const receive = async (
    req: IncomingMessage,
    res: ServerResponse,
    v: ModelView,
  ): Promise<[unknown, Scoring]> => {
    const scoring: Scoring = { req, res, admission: undefined, bodyArrived: false, expire };
    const admission = guard?.admit(scoring);
    if (admission) {
      scoring.admission = admission;
      (res as AdmittedResponse)[ADMISSION] = admission;
    }
    let body: unknown;
    try {
      body = await bodies.read(req, res, {
        maxBytes: limits.maxBodyBytes,
        shape: v.shape,
        budget: admission,
      });
    } catch (error) {
      if (error instanceof JsonLimitError) guard?.countJsonRefusal();
      throw error;
    }
    scoring.bodyArrived = true;
    return [body, scoring];
  };

  /** Scores a batch unless the guard refuses its rows; answers nothing once the deadline passed. */
  const runBatch = async (
    v: ModelView,
    scoring: Scoring,
    n: number,
    run: (cancel: Admission | undefined) => Promise<Outputs>,
  ): Promise<Outputs | undefined> => {
    guard?.admitRows(v.model.runtime.pendingRows, n);
    try {
      return await run(scoring.admission);
    } catch (error) {
      if (error instanceof CancelledError) return undefined;
      throw error;
    }
  };

  const score = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    authorize(req);
    const v = served();
    const [body, scoring] = await receive(req, res, v);
    const runtime = v.model.runtime;
    const { validators, contract } = runtime;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(
        400,
        'the body must be a JSON object with "data" (rows in feature_order) or "records"',
      );
    }
    const hasData = 'data' in body;
    if (hasData === 'records' in body) {
      throw new HttpError(
        400,
        hasData
          ? 'send either "data" or "records", not both'
          : `the body needs "data" (rows of ${contract.features.length} values in feature_order) or "records" (objects of feature: value)`,
      );
    }
    const list = (body as { data?: unknown; records?: unknown })[hasData ? 'data' : 'records'];
    if (Array.isArray(list) && list.length > limits.maxBatchRecords) {
      throw new HttpError(
        413,
        `batch of ${list.length} is over the limit of ${limits.maxBatchRecords} records; split the request`,
      );
    }
    if (hasData) {
      if (!validators.data(body)) {
        throw new HttpError(
          400,
          'the request does not match the model inputs',
          validators.describeData(body),
        );
      }
      const rows = list as unknown[][];
      const outputs = await runBatch(v, scoring, rows.length, (cancel) => runtime.scoreRows(rows, cancel));
      if (outputs === undefined) return;
      metrics.records.labels('data').inc(rows.length);
      observe(outputs, v);
      const primary = contract.outputs.find((o) => o.name === contract.primaryOutput) as OutputSpec;
      sendJson(res, 200, { result: outputValues(primary, outputs[primary.name] as Float32Array) });
      return;
    }
    if (!validators.records(body)) {
      throw new HttpError(
        400,
        'the request does not match the model inputs',
        validators.describeRecords(body),
      );
    }
    const records = list as Record<string, unknown>[];
    const outputs = await runBatch(v, scoring, records.length, (cancel) =>
      runtime.scoreRecords(records, cancel),
    );
    if (outputs === undefined) return;
    metrics.records.labels('records').inc(records.length);
    observe(outputs, v);
    const specs = contract.outputs;
    const columns = specs.map((o) => outputs[o.name] as Float32Array);
    const predictions = new Array<Record<string, OutputValue>>(records.length);
    for (let r = 0; r < records.length; r++) {
      const prediction: Record<string, OutputValue> = {};
      for (let o = 0; o < specs.length; o++) {
        const spec = specs[o] as OutputSpec;
        prediction[spec.name] = outputValue(spec, columns[o] as Float32Array, r);
      }
      predictions[r] = prediction;
    }
    sendJson(res, 200, { model: { name: contract.name, version: contract.version }, predictions });
  };

  app.use((req: Request, res: Response, next: NextFunction) => {
    instrument(req, res, req.path);
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });
  app.get('/readyz', (_req, res) => {
    const model = state.model;
    if (state.ready && model !== undefined) {
      res.json({
        status: 'ready',
        model: model.runtime.contract.name,
        version: model.runtime.contract.version,
      });
    } else {
      res.status(503).json({ status: 'not ready', reason: state.notReadyReason });
    }
  });
  app.get('/metrics', async (_req, res) => {
    metrics.ready.set(state.ready ? 1 : 0);
    metrics.inFlight.set(guard?.requestsInFlight ?? 0);
    metrics.inFlightBodyBytes.set(guard?.bodyBytesInFlight ?? 0);
    metrics.queuedRows.set(state.model?.runtime.pendingRows ?? 0);
    if (state.model !== undefined) served(); // sets scorer_model_info before the first score
    res.setHeader('content-type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  app.get('/model', (req, res) => {
    authorize(req);
    const { model } = served();
    const contract = model.runtime.contract;
    res.json({
      name: contract.name,
      version: contract.version,
      sha256: model.sha256,
      metadata: contract.metadata,
      card: model.card ?? null,
    });
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(served().openapi);
  });

  app.get('/v2', (_req, res) => {
    res.json({ name: 'onnx-scorer', version: '1', extensions: [] });
  });
  app.get('/v2/health/live', (_req, res) => {
    res.json({ live: true });
  });
  app.get('/v2/health/ready', (_req, res) => {
    res.status(state.ready ? 200 : 503).json({ ready: state.ready });
  });
  const findModel = (req: Request): ModelView => {
    authorize(req);
    const v = served();
    const contract = v.model.runtime.contract;
    const { name, version } = req.params as { name: string; version?: string };
    if (name !== contract.name || (version !== undefined && version !== contract.version)) {
      throw new HttpError(
        404,
        `model "${name}"${version === undefined ? '' : ` version "${version}"`} not found; this server serves "${contract.name}" version "${contract.version}"`,
      );
    }
    return v;
  };
  app.get(['/v2/models/:name', '/v2/models/:name/versions/:version'], (req, res) => {
    res.json(findModel(req).v2.metadata);
  });
  app.get(['/v2/models/:name/ready', '/v2/models/:name/versions/:version/ready'], (req, res) => {
    findModel(req);
    res.json({ name: req.params.name, ready: state.ready });
  });
  app.post(['/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer'], async (req, res) => {
    const v = findModel(req);
    const [body, scoring] = await receive(req, res, v);
    const request = v.v2.decode(body);
    const outputs = await runBatch(v, scoring, request.batch.n, (cancel) =>
      v.model.runtime.run(request.batch, cancel),
    );
    if (outputs === undefined) return;
    metrics.records.labels('v2').inc(request.batch.n);
    observe(outputs, v);
    sendJson(res, 200, v.v2.encode(request, outputs));
  });

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpError(404, `no endpoint ${req.method} ${req.path}; see GET /openapi.json`));
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    fail(req, res, error, req.path);
  });

  return (req, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && (url === '/score' || url.startsWith('/score?'))) {
      instrument(req, res, '/score');
      score(req, res).catch((error: unknown) => fail(req, res, error, '/score'));
      return;
    }
    void app(req, res);
  };
}

/** 429 and 503 are the scorer protecting itself or not ready: logged as warnings, not failures. */
const REFUSALS = new Set([429, 503]);

function notReadyProbe(route: string, status: number): boolean {
  return status === 503 && (route === '/readyz' || route === '/v2/health/ready');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return; // the deadline answered first
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function isClientError(error: unknown): error is { status: number; expose?: boolean; message?: string } {
  const status = (error as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function routeLabel(path: string): string {
  if (path === '/score') return path;
  if (path.startsWith('/v2/models/')) {
    if (path.endsWith('/infer')) return '/v2/models/:name/infer';
    if (path.endsWith('/ready')) return '/v2/models/:name/ready';
    return '/v2/models/:name';
  }
  switch (path) {
    case '/healthz':
    case '/readyz':
    case '/metrics':
    case '/model':
    case '/openapi.json':
    case '/v2':
    case '/v2/health/live':
    case '/v2/health/ready':
      return path;
    default:
      return 'other';
  }
}
