// The one instrumentation layer of the scorer's HTTP layer: request id, trace
// context (traceparent), `Connection: close` while draining, the access log, the
// request metrics labelled from the route table, and the exported server span.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Clock } from './clock';
import type { ErrorHandler } from './error-handler';
import type { CounterSeries, HistogramSeries, ScorerMetrics } from './metrics';
import { UNKNOWN_ROUTE, type Route } from './routes/table';
import type { ServingState } from './serving-state';
import { ARRIVED_MS, TIMER, type TimedResponse } from './send-json';
import { formatTraceparent, type SpanExporter, type TraceIds } from './tracing';

export interface InstrumentationDeps {
  readonly state: ServingState;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: ScorerMetrics;
  readonly errors: ErrorHandler;
  /** MODEL_VERSION: the version announced while the model loads (it is checked at load). */
  readonly configuredVersion?: string | undefined;
  readonly traces: TraceIds;
  /** Where finished spans go when OTLP export is on. */
  readonly spans?: SpanExporter | undefined;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** 429 and 503 are the scorer protecting itself or not ready: logged as warnings, not failures. */
const REFUSALS = new Set([429, 503]);

/** Probes and scrapes: answered with trace context, but no span is exported for them. */
const UNTRACED = new Set(['/healthz', '/readyz', '/metrics']);

/** Where an unanswered response keeps the set it is listed in, so one listener serves all. */
const UNANSWERED = Symbol('unanswered');
type ListedResponse = ServerResponse & { [UNANSWERED]?: Set<ServerResponse> };

function forget(this: ListedResponse): void {
  this[UNANSWERED]?.delete(this);
}

export class Instrumentation {
  /**
   * Responses not yet sent: when draining starts they get Connection: close,
   * so their client opens its next connection elsewhere.
   */
  private readonly unanswered = new Set<ServerResponse>();
  /**
   * The series of the request metrics, found once per route, method and status
   * (a few dozen at most: routes come from the table, methods from node's
   * parser, statuses from the scorer's own answers), so counting a request
   * builds no label object and hashes nothing.
   */
  private readonly requestSeries = new Map<string, CounterSeries>();
  private readonly latencySeries = new Map<string, HistogramSeries>();

  constructor(private readonly deps: InstrumentationDeps) {
    deps.state.onDraining(() => {
      for (const res of this.unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
    });
  }

  /**
   * Request id, draining, access log and metrics for one request, labelled by
   * `route` (the route table's match for its path; undefined: unknown path).
   */
  start(req: IncomingMessage, res: ServerResponse, path: string, route: Route | undefined): void {
    const { state, logger, clock, metrics, errors } = this.deps;
    const start = clock.now();
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', id);
    // The request's own span in the caller's trace (or a new one): answered, logged, and
    // the parent of any copy sent on its behalf (they read it from this header).
    const trace = this.deps.traces.start(req.headers.traceparent);
    res.setHeader('traceparent', formatTraceparent(trace));
    (res as TimedResponse)[TIMER] = clock;
    (res as TimedResponse)[ARRIVED_MS] = start;
    // Which version answered: callers and the canary's tests count by it.
    const version = state.model?.runtime.contract.version ?? this.deps.configuredVersion;
    if (version !== undefined) res.setHeader('x-model-version', version);
    if (state.draining) res.setHeader('connection', 'close');
    else {
      this.unanswered.add(res);
      (res as ListedResponse)[UNANSWERED] = this.unanswered;
      res.on('close', forget);
    }
    if (logger.isLevelEnabled('trace'))
      logger.trace({ reqId: id, method: req.method, path }, 'request received');
    const label = route?.label ?? UNKNOWN_ROUTE;
    res.on('finish', () => {
      const seconds = (clock.now() - start) / 1000;
      const status = res.statusCode;
      // The access log line, built only when it is written.
      const entry = () => ({
        reqId: id,
        traceId: trace.traceId,
        spanId: trace.spanId,
        method: req.method,
        route: label,
        status,
        ms: seconds * 1000,
      });
      if (route?.probe === true && status === 503) {
        // Not ready while loading or draining is the probe's answer, not a failure.
        if (logger.isLevelEnabled('debug')) logger.debug(entry(), 'not ready');
        return;
      }
      this.requestsOf(label, req.method ?? '', status).value++;
      metrics.latency.observe(this.latencyOf(label), seconds);
      const spans = this.deps.spans;
      if (spans !== undefined && trace.sampled && !UNTRACED.has(label)) {
        const endMs = performance.timeOrigin + performance.now();
        spans.add({
          context: trace,
          name: `${req.method ?? ''} ${label}`,
          startMs: endMs - seconds * 1000,
          endMs,
          error: res.statusCode >= 500,
          attributes: {
            'http.request.method': req.method ?? '',
            'http.route': label,
            'http.response.status_code': res.statusCode,
            'x-request-id': id,
            ...(version === undefined ? {} : { 'model.version': version }),
          },
        });
      }
      if (status >= 500 && !REFUSALS.has(status)) {
        logger.error({ ...entry(), error: errors.messageOf(res) }, 'request failed');
      } else if (status >= 400) {
        logger[REFUSALS.has(status) ? 'warn' : 'info'](
          { ...entry(), error: errors.messageOf(res) },
          'request rejected',
        );
      } else if (logger.isLevelEnabled('debug')) logger.debug(entry(), 'request');
    });
  }

  /** The request counter's series of one route, method and status. */
  private requestsOf(route: string, method: string, status: number): CounterSeries {
    const key = `${route} ${method} ${status}`;
    let series = this.requestSeries.get(key);
    if (series === undefined) {
      series = this.deps.metrics.requests.of(route, method, String(status));
      this.requestSeries.set(key, series);
    }
    return series;
  }

  /** The latency histogram's series of one route. */
  private latencyOf(route: string): HistogramSeries {
    let series = this.latencySeries.get(route);
    if (series === undefined) {
      series = this.deps.metrics.latency.of(route);
      this.latencySeries.set(route, series);
    }
    return series;
  }
}
