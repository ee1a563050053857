// Writes a JSON answer on a plain node:http response.

import type { ServerResponse } from 'node:http';

/** Set by the instrumentation on each response: milliseconds since the request arrived. */
export const ELAPSED_MS = Symbol('elapsedMs');
export type TimedResponse = ServerResponse & { [ELAPSED_MS]?: () => number };

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
  const elapsed = (res as TimedResponse)[ELAPSED_MS];
  if (elapsed) headers['server-timing'] = `app;dur=${elapsed().toFixed(3)}`;
  res.writeHead(status, headers);
  res.end(text);
}
