// The scorer's HTTP layer, composed: the route table built from the route
// modules, one instrumentation layer labelled from it, the routes (POST /score
// on plain node:http objects, the rest through express), API keys and the
// overload guard, and one error handler. It receives every dependency (serving
// state, logger, clock, metrics, limits, API keys) so tests can start it
// in-process.

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ApiKeys } from './auth';
import type { Clock } from './clock';
import type { RequestLimits, ShadowConfig } from './config';
import { SpanExporter, TraceIds, type TracingConfig } from './tracing';
import { ErrorHandler } from './error-handler';
import { HttpError } from './http-errors';
import { Instrumentation } from './instrumentation';
import type { ScorerMetrics } from './metrics';
import { RequestBodies } from './request-body';
import type { RouteModule } from './routes/deps';
import { SCORER_ROUTES } from './routes/index';
import { RouteTable, type Route } from './routes/table';
import { Scoring } from './scoring';
import type { ServingState } from './serving-state';
import { COALESCE_RECORDS, Shadow } from './shadow/mirror';

export { systemClock, type Clock } from './clock';

export interface AppDeps {
  readonly state: ServingState;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: ScorerMetrics;
  readonly limits: RequestLimits;
  readonly apiKeys: ApiKeys | undefined;
  /** The route modules served (default: the scorer's own, SCORER_ROUTES). */
  readonly routes?: readonly RouteModule[];
  /** Shadow mirroring to a candidate version (SHADOW_*); off when undefined. */
  readonly shadow?: ShadowConfig | undefined;
  /** MODEL_VERSION, announced in x-model-version until the model is loaded. */
  readonly modelVersion?: string | undefined;
  /** OTLP export of the server spans (OTEL_*); off when undefined. */
  readonly tracing?: TracingConfig | undefined;
}

/** The request listener of the scorer, with the route table it serves. */
export type ScorerApp = RequestListener & {
  readonly table: RouteTable;
  /** Shadow mirroring, when configured (closed at shutdown). */
  readonly shadow: Shadow | undefined;
  /** The span exporter, when configured (flushed at shutdown). */
  readonly spans: SpanExporter | undefined;
};

export function createApp(deps: AppDeps): ScorerApp {
  const { state, logger, clock, metrics, limits, apiKeys } = deps;
  // A refused body is thrown away up to MAX_BODY_BYTES before the connection closes.
  const bodies = new RequestBodies(limits.maxBodyBytes);
  const errors = new ErrorHandler(logger, bodies);
  const shadow =
    deps.shadow === undefined
      ? undefined
      : new Shadow(deps.shadow, {
          metrics: metrics.shadow,
          clock,
          logger,
          // Copies wait as raw bytes; they get a quarter of the request bodies' budget.
          maxQueuedBytes: Math.max(limits.maxBodyBytes, Math.floor(limits.overload.maxInflightBodyBytes / 4)),
          maxAnswerBytes: 4 * limits.maxBodyBytes,
          maxCoalescedBytes: limits.maxBodyBytes,
          maxCoalescedRecords: Math.min(COALESCE_RECORDS, limits.maxBatchRecords),
        });
  const scoring = new Scoring({
    state,
    metrics,
    limits,
    authenticated: apiKeys !== undefined,
    bodies,
    errors,
    shadow,
  });
  const routeDeps = { state, logger, clock, metrics, limits, scoring, shadow };
  const table = new RouteTable((deps.routes ?? SCORER_ROUTES).flatMap((module) => module(routeDeps)));
  const spans =
    deps.tracing === undefined
      ? undefined
      : new SpanExporter(deps.tracing, { counter: metrics.traceSpans, logger });
  const instrumentation = new Instrumentation({
    state,
    logger,
    clock,
    metrics,
    errors,
    configuredVersion: deps.modelVersion,
    traces: new TraceIds(),
    spans,
  });

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
  /** Runs a route's handler (after its key check); any error goes to the error handler. */
  const run = (route: Route, req: IncomingMessage, res: ServerResponse, path: string): void => {
    try {
      if (route.auth === true) authorize(req);
      const done = route.handler(req, res);
      if (done instanceof Promise) done.catch((error: unknown) => errors.fail(req, res, error, path));
    } catch (error) {
      errors.fail(req, res, error, path);
    }
  };

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);
  for (const route of table.routes) {
    if (route.direct === true) continue;
    const handle = (req: Request, res: Response) => run(route, req, res, req.path);
    if (route.method === 'GET') app.get([...route.paths], handle);
    else app.post([...route.paths], handle);
  }
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpError(404, `no endpoint ${req.method} ${req.path}; see GET /openapi.json`));
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    errors.fail(req, res, error, req.path);
  });

  const listener: RequestListener = (req, res) => {
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const route = table.find(req.method, path);
    instrumentation.start(req, res, path, route);
    if (route?.direct === true && route.method === req.method) {
      run(route, req, res, path);
      return;
    }
    void app(req, res);
  };
  return Object.assign(listener, { table, shadow, spans });
}
