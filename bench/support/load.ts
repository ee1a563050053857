// Load generators shared by the benchmarks: a closed loop (clients sending back
// to back) and an open loop (requests started at a fixed rate whatever the
// server does, each timed from its scheduled start, so a stalled server cannot
// hide its queue). Both POST one body to <url>/score over keep-alive
// connections and count an answer as good only if `accept` says so. A server
// that closes the connection after each answer (Connection: close, as gunicorn's
// sync worker does) gets a new connection per request; every request ends as
// exactly one answer or one error (reset, refused, wrong answer, no answer
// within the timeout), so nothing is lost from the count.

import { Agent, request } from 'node:http';

export interface Target {
  /** Base URLs (http://host:port); connections and requests go round-robin over them. */
  urls: string[];
  /** Host header, for a path through an Ingress controller. */
  host?: string;
  /** Whether an answer counts as served (default: status 200). */
  accept?: (status: number, body: string) => boolean;
}

export interface Measure {
  count: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** The middle of `values` (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return NaN;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Default: a request with no answer after this long counts as an error. */
const TIMEOUT_SECONDS = 30;

export function post(
  target: Target,
  url: string,
  body: string,
  agent: Agent,
  timeoutSeconds = TIMEOUT_SECONDS,
): Promise<boolean> {
  const accept = target.accept ?? ((status: number) => status === 200);
  return new Promise((done) => {
    let settled = false;
    const resolve = (ok: boolean) => {
      if (settled) return;
      settled = true;
      done(ok);
    };
    const req = request(
      `${url}/score`,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(target.host ? { host: target.host } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(accept(res.statusCode ?? 0, text)));
        res.on('error', () => resolve(false));
        res.on('close', () => resolve(false)); // cut short: no 'end' came first
      },
    );
    req.setTimeout(timeoutSeconds * 1000, () => req.destroy(new Error('no answer in time')));
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

export function summarize(latencies: number[], errors: number, seconds: number): Measure {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: latencies.length, rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99), errors };
}

/** `connections` clients sending back to back for `seconds`. */
export async function closedLoop(
  target: Target,
  body: string,
  connections: number,
  seconds: number,
): Promise<Measure> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      const url = target.urls[i % target.urls.length] as string;
      while (performance.now() < deadline) {
        const t0 = performance.now();
        if (await post(target, url, body, agent)) latencies.push(performance.now() - t0);
        else errors++;
      }
    }),
  );
  agent.destroy();
  return summarize(latencies, errors, (performance.now() - start) / 1000);
}

/**
 * Requests started at a fixed rate for `seconds`; latency from each scheduled
 * start. Each request either is answered or counts as an error (after at most
 * `timeoutSeconds` without an answer).
 */
export async function openLoop(
  target: Target,
  body: string,
  rate: number,
  seconds: number,
  timeoutSeconds = TIMEOUT_SECONDS,
): Promise<Measure> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const latencies: number[] = [];
  let errors = 0;
  const total = rate * seconds;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await sleep(wait);
    const url = target.urls[i % target.urls.length] as string;
    inflight.push(
      post(target, url, body, agent, timeoutSeconds).then((ok) => {
        if (ok) latencies.push(performance.now() - scheduled);
        else errors++;
      }),
    );
  }
  await Promise.all(inflight);
  agent.destroy();
  return summarize(latencies, errors, (performance.now() - start) / 1000);
}
