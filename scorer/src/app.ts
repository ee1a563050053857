// The scorer's HTTP layer, composed: the route table built from the route
// modules, one instrumentation layer labelled from it, the routes (POST /score
// on plain node:http objects, the rest through express), API keys and the
// overload guard, and one error handler. It receives every dependency (serving
// state, logger, clock, metrics, limits, API keys) so tests can start it
// in-process.

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { CallerAuth, type ApiKeys } from './auth';
import type { Clock } from './clock';
import type { RequestLimits, ShadowConfig } from './config';
import type { PayloadLogConfig } from './payload-log/config';
import { PayloadLog } from './payload-log/payload-log';
import { SpanExporter, TraceIds, type TracingConfig } from './tracing';
import { ErrorHandler } from './error-handler';
import { HttpError } from './http-errors';
import { Instrumentation } from './instrumentation';
import type { OidcVerifier } from './oidc';
import type { ScorerMetrics } from './metrics';
import { RequestBodies } from './request-body';
import type { RouteModule } from './routes/deps';
import { SCORER_ROUTES } from './routes/index';
import { RouteTable, type Route } from './routes/table';
import { Scoring } from './scoring';
import type { ServingState } from './serving-state';
import { Shadow, shadowBounds } from './shadow/mirror';

export { systemClock, type Clock } from './clock';

export interface AppDeps {
  readonly state: ServingState;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: ScorerMetrics;
  readonly limits: RequestLimits;
  readonly apiKeys: ApiKeys | undefined;
  /** OIDC bearer tokens accepted (OIDC_*); with API keys too, either is accepted. */
  readonly oidc?: OidcVerifier | undefined;
  /** The route modules served (default: the scorer's own, SCORER_ROUTES). */
  readonly routes?: readonly RouteModule[];
  /** Shadow mirroring to a candidate version (SHADOW_*); off when undefined. */
  readonly shadow?: ShadowConfig | undefined;
  /** MODEL_VERSION, announced in x-model-version until the model is loaded. */
  readonly modelVersion?: string | undefined;
  /** Payload logging (PAYLOAD_LOG_*); off when undefined. */
  readonly payloadLog?: PayloadLogConfig | undefined;
  /** OTLP export of the server spans (OTEL_*); off when undefined. */
  readonly tracing?: TracingConfig | undefined;
}

/** The request listener of the scorer, with the route table it serves. */
export type ScorerApp = RequestListener & {
  readonly table: RouteTable;
  /** Shadow mirroring, when configured (closed at shutdown). */
  readonly shadow: Shadow | undefined;
  /** Payload logging, when configured (flushed and closed at shutdown). */
  readonly payloadLog: PayloadLog | undefined;
  /** The span exporter, when configured (flushed at shutdown). */
  readonly spans: SpanExporter | undefined;
};

export function createApp(deps: AppDeps): ScorerApp {
  const { state, logger, clock, metrics, limits, apiKeys } = deps;
  const callers = new CallerAuth(apiKeys, deps.oidc);
  // A refused body is thrown away, up to twice MAX_BODY_BYTES in all, before the connection closes.
  const bodies = new RequestBodies(limits.maxBodyBytes);
  const errors = new ErrorHandler(logger, bodies);
  const shadow =
    deps.shadow === undefined
      ? undefined
      : new Shadow(deps.shadow, { metrics: metrics.shadow, clock, logger, ...shadowBounds(limits) });
  const scoring = new Scoring({
    state,
    metrics,
    limits,
    authenticated: callers.enabled,
    bodies,
    errors,
    shadow,
  });
  const payloadLog =
    deps.payloadLog === undefined
      ? undefined
      : new PayloadLog(deps.payloadLog, { registry: metrics.registry, logger, clock });
  const routeDeps = { state, logger, clock, metrics, limits, scoring, shadow, payloadLog };
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

  /** Runs a route's handler; any error goes to the error handler. */
  const handle = (route: Route, req: IncomingMessage, res: ServerResponse, path: string): void => {
    try {
      const done = route.handler(req, res);
      if (done instanceof Promise) done.catch((error: unknown) => errors.fail(req, res, error, path));
    } catch (error) {
      errors.fail(req, res, error, path);
    }
  };
  /** Runs a route's handler after its caller check (API key or bearer token). */
  const run = (route: Route, req: IncomingMessage, res: ServerResponse, path: string): void => {
    const check = route.auth === true ? callers.check(req.headers) : undefined;
    if (check === undefined) return handle(route, req, res, path);
    check.then(
      () => handle(route, req, res, path),
      (error: unknown) => errors.fail(req, res, error, path),
    );
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
  return Object.assign(listener, { table, shadow, payloadLog, spans });
}
