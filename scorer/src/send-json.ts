// Writes a JSON answer on a plain node:http response.

import type { ServerResponse } from 'node:http';

/** Set by the instrumentation on each response: the clock and when the request arrived on it. */
export const TIMER = Symbol('timer');
export const ARRIVED_MS = Symbol('arrivedMs');
export type TimedResponse = ServerResponse & { [TIMER]?: { now(): number }; [ARRIVED_MS]?: number };

/** Milliseconds since the request of `res` arrived; undefined when the instrumentation did not time it. */
export function elapsedMs(res: ServerResponse): number | undefined {
  const timer = (res as TimedResponse)[TIMER];
  return timer === undefined ? undefined : timer.now() - ((res as TimedResponse)[ARRIVED_MS] as number);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return; // the deadline answered first
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  };
  // The scorer's own time for this answer (W3C Server-Timing): what a stable
  // pod compares its own time with when it mirrors to a candidate, free of
  // the network hop between them.
  const elapsed = elapsedMs(res);
  if (elapsed !== undefined) headers['server-timing'] = `app;dur=${elapsed.toFixed(3)}`;
  res.writeHead(status, headers);
  res.end(text);
}
