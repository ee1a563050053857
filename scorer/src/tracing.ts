// W3C Trace Context for every request, and an optional exporter of the
// scorer's server spans as OTLP/HTTP JSON (docs/scorer.md, Tracing).
//
// Every request joins the trace its `traceparent` header names (a header that
// is not strictly valid is ignored: a new trace starts) and gets a span id of
// its own; the answer, the access log and every copy sent on its behalf carry
// them. Exporting is off unless OTEL_TRACES_EXPORTER=otlp: then finished spans
// wait in a bounded queue and are sent in batches by one request at a time, so
// a slow or dead collector costs dropped spans (counted), never a request.

import { randomFillSync } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Counter } from 'prom-client';
import type { Logger } from 'pino';

export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  /** The caller's span (from a valid traceparent), else undefined: this span starts the trace. */
  readonly parentSpanId: string | undefined;
  readonly sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * A traceparent header's trace id, parent id and sampled flag, or undefined when
 * it is not valid (W3C Trace Context level 1): lower-case hex only, version 00
 * exactly 55 characters, a later version at least that with "-" after the flags,
 * version ff, an all-zero trace id or an all-zero parent id refused. Two headers
 * are refused too.
 */
export function parseTraceparent(
  header: string | string[] | undefined,
): { traceId: string; parentId: string; sampled: boolean } | undefined {
  if (typeof header !== 'string' || header.length < 55 || header.length > 512) return undefined;
  const version = header.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return undefined;
  if (version === '00' ? header.length !== 55 : header.length > 55 && header[55] !== '-') return undefined;
  if (header[2] !== '-' || header[35] !== '-' || header[52] !== '-') return undefined;
  const traceId = header.slice(3, 35);
  const parentId = header.slice(36, 52);
  const flags = header.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.sampled ? '01' : '00'}`;
}

/** Random ids from a buffer refilled every few hundred requests (one getrandom call for many ids). */
export class TraceIds {
  private readonly pool = Buffer.alloc(4096);
  private pos = this.pool.length;

  private hex(bytes: number): string {
    if (this.pos + bytes > this.pool.length) {
      randomFillSync(this.pool);
      this.pos = 0;
    }
    const id = this.pool.toString('hex', this.pos, this.pos + bytes);
    this.pos += bytes;
    return id;
  }

  traceId(): string {
    let id = this.hex(16);
    while (id === ZERO_TRACE) id = this.hex(16);
    return id;
  }

  spanId(): string {
    let id = this.hex(8);
    while (id === ZERO_SPAN) id = this.hex(8);
    return id;
  }

  /** The context of a request: the caller's trace when its traceparent is valid, else a new sampled one. */
  start(header: string | string[] | undefined): TraceContext {
    const parent = parseTraceparent(header);
    if (parent === undefined) {
      // Both ids of a new trace from one read of the pool.
      const ids = this.hex(24);
      let traceId = ids.slice(0, 32);
      let spanId = ids.slice(32);
      if (traceId === ZERO_TRACE) traceId = this.traceId();
      if (spanId === ZERO_SPAN) spanId = this.spanId();
      return { traceId, spanId, parentSpanId: undefined, sampled: true };
    }
    return {
      traceId: parent.traceId,
      spanId: this.spanId(),
      parentSpanId: parent.parentId,
      sampled: parent.sampled,
    };
  }
}

/** OTEL_* settings of the exporter (docs/scorer.md, Tracing). */
export interface TracingConfig {
  /** Where spans are POSTed: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  readonly endpoint: URL;
  readonly serviceName: string;
  /** Finished spans waiting to be sent (OTEL_BSP_MAX_QUEUE_SIZE); more are dropped. */
  readonly maxQueueSize: number;
  /** Spans per request to the collector (OTEL_BSP_MAX_EXPORT_BATCH_SIZE). */
  readonly maxBatchSize: number;
  /** A partial batch is sent after this long (OTEL_BSP_SCHEDULE_DELAY, ms). */
  readonly scheduleDelayMs: number;
  /** Time allowed to one request to the collector (OTEL_EXPORTER_OTLP_TIMEOUT, ms). */
  readonly timeoutMs: number;
}

/** One finished server span. Times are Unix epoch milliseconds (fractional). */
export interface FinishedSpan {
  readonly context: TraceContext;
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly error: boolean;
  readonly attributes: Readonly<Record<string, string | number>>;
}

const SPAN_KIND_SERVER = 2;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

function nanos(ms: number): string {
  return (BigInt(Math.round(ms * 1000)) * 1000n).toString();
}

function attribute(key: string, value: string | number) {
  return {
    key,
    value:
      typeof value === 'number' && Number.isInteger(value)
        ? { intValue: String(value) } // int64: a string in OTLP's JSON, as in protobuf's
        : typeof value === 'number'
          ? { doubleValue: value }
          : { stringValue: value },
  };
}

/** The OTLP/HTTP JSON body (ExportTraceServiceRequest) of a batch of spans. */
export function otlpBody(serviceName: string, spans: readonly FinishedSpan[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [attribute('service.name', serviceName)] },
        scopeSpans: [
          {
            scope: { name: 'fnol-scorer' },
            spans: spans.map((s) => ({
              traceId: s.context.traceId,
              spanId: s.context.spanId,
              ...(s.context.parentSpanId === undefined ? {} : { parentSpanId: s.context.parentSpanId }),
              name: s.name,
              kind: SPAN_KIND_SERVER,
              startTimeUnixNano: nanos(s.startMs),
              endTimeUnixNano: nanos(s.endMs),
              attributes: Object.entries(s.attributes).map(([k, v]) => attribute(k, v)),
              status: { code: s.error ? STATUS_ERROR : STATUS_UNSET },
            })),
          },
        ],
      },
    ],
  });
}

/**
 * Batches finished spans to an OTLP/HTTP collector. `add` never waits and never
 * throws: a full queue drops the span. One request is in flight at a time; a
 * failed batch is dropped (counted as failed, one warning a minute at most).
 */
export class SpanExporter {
  private queue: FinishedSpan[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private readonly agent: http.Agent;
  private lastWarning = -Infinity;
  private closed = false;

  constructor(
    private readonly config: TracingConfig,
    private readonly deps: { counter: Counter<'result'>; logger: Logger },
  ) {
    const secure = config.endpoint.protocol === 'https:';
    this.agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 1 });
  }

  add(span: FinishedSpan): void {
    if (this.closed || this.queue.length >= this.config.maxQueueSize) {
      this.deps.counter.labels('dropped').inc();
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.config.maxBatchSize) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.config.scheduleDelayMs);
      this.timer.unref();
    }
  }

  /** Spans waiting to be sent. */
  get queued(): number {
    return this.queue.length;
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.sending !== undefined || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.config.maxBatchSize);
    // Errors end in .then's second handler: counted and logged, never thrown.
    this.sending = this.post(otlpBody(this.config.serviceName, batch)).then(
      () => this.deps.counter.labels('exported').inc(batch.length),
      (error: unknown) => {
        this.deps.counter.labels('failed').inc(batch.length);
        const now = Date.now();
        if (now - this.lastWarning >= 60_000) {
          this.lastWarning = now;
          this.deps.logger.warn(
            {
              endpoint: this.config.endpoint.origin,
              spans: batch.length,
              error: error instanceof Error ? error.message : String(error),
            },
            'cannot export spans to the OTLP collector; they are dropped (scorer_trace_spans_total{result="failed"}); check OTEL_EXPORTER_OTLP_ENDPOINT and the collector',
          );
        }
      },
    );
    void this.sending.finally(() => {
      this.sending = undefined;
      if (this.queue.length >= this.config.maxBatchSize || (this.closed && this.queue.length > 0))
        this.flush();
      else if (this.queue.length > 0 && this.timer === undefined) {
        this.timer = setTimeout(() => this.flush(), this.config.scheduleDelayMs);
        this.timer.unref();
      }
    });
  }

  private post(body: string): Promise<void> {
    const { endpoint, timeoutMs } = this.config;
    const request = endpoint.protocol === 'https:' ? https.request : http.request;
    return new Promise<void>((resolve, reject) => {
      const req = request(endpoint, {
        method: 'POST',
        agent: this.agent,
        timeout: timeoutMs,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`the collector answered HTTP ${status}`));
        });
        res.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      req.end(body);
    });
  }

  /** Sends what is queued (within one OTEL_EXPORTER_OTLP_TIMEOUT) and stops; later spans are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + this.config.timeoutMs;
    this.flush();
    while (this.sending !== undefined && Date.now() < deadline) {
      await Promise.race([this.sending, new Promise((r) => setTimeout(r, 50))]);
    }
    this.agent.destroy();
  }
}
