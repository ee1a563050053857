// Sends one copy to the candidate over keep-alive connections, within a
// deadline, and reads its answer within a size bound. The candidate is
// untrusted: any failure is a CandidateError with its kind, never a crash.

import http from 'node:http';
import https from 'node:https';

/** Why a copy could not be compared. */
export type CandidateFailure =
  'timeout' | 'connection' | 'status' | 'too_large' | 'not_json' | 'shape' | 'version';

export class CandidateError extends Error {
  override name = 'CandidateError';
  constructor(
    readonly kind: CandidateFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface CandidateAnswer {
  readonly status: number;
  /** Its x-model-version header. */
  readonly version: string | undefined;
  /** Its own time to answer, in seconds, from its Server-Timing header (app;dur=ms), if any. */
  readonly serverSeconds: number | undefined;
  readonly body: Buffer;
}

export interface SenderOptions {
  readonly timeoutMs: number;
  /** Connections kept to the candidate (one per worker). */
  readonly concurrency: number;
  /** A longer answer is a candidate error. */
  readonly maxAnswerBytes: number;
}

/** The `app` metric's duration of a Server-Timing header, in seconds; undefined when absent or odd. */
export function serverSeconds(header: string | string[] | undefined): number | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!text || text.length > 1024) return undefined;
  const m = /(?:^|,)\s*app\s*;(?:[^,]*;)?\s*dur=([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*(?:;|,|$)/.exec(text);
  return m ? Number(m[1]) / 1000 : undefined;
}

export class CandidateSender {
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  /** The base URL's path without its trailing slash. */
  private readonly prefix: string;

  constructor(
    private readonly base: URL,
    private readonly options: SenderOptions,
  ) {
    const secure = base.protocol === 'https:';
    const Agent = secure ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: options.concurrency, scheduling: 'lifo' });
    this.request = secure ? https.request : http.request;
    this.prefix = base.pathname.replace(/\/+$/, '');
  }

  /** POSTs `body` to the base URL + `path`; resolves on a 2xx answer read in full. */
  send(path: string, body: Buffer, headers: Record<string, string>): Promise<CandidateAnswer> {
    return this.attempt(path, body, headers, true);
  }

  /**
   * One request. A kept-alive connection the candidate closed just as the copy
   * was written fails with a reset before any answer: that copy is sent once
   * more on a new connection (`mayRetry`), as the candidate never saw it.
   */
  private attempt(
    path: string,
    body: Buffer,
    headers: Record<string, string>,
    mayRetry: boolean,
  ): Promise<CandidateAnswer> {
    const { timeoutMs, maxAnswerBytes } = this.options;
    return new Promise<CandidateAnswer>((resolve, reject) => {
      let settled = false;
      const fail = (error: CandidateError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(error);
      };
      const req = this.request({
        agent: this.agent,
        method: 'POST',
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port,
        path: this.prefix + path,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': String(body.length),
        },
      });
      const timer = setTimeout(
        () => fail(new CandidateError('timeout', `no complete answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      let answered = false;
      req.on('error', (error: NodeJS.ErrnoException) => {
        const stale =
          req.reusedSocket && !answered && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        if (mayRetry && stale && !settled) {
          settled = true;
          clearTimeout(timer);
          resolve(this.attempt(path, body, headers, false));
          return;
        }
        fail(new CandidateError('connection', `request failed: ${error.code ?? error.message}`));
      });
      req.on('response', (res) => {
        answered = true;
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          res.resume(); // read to the end, so the connection can serve the next copy
          res.on('end', () => fail(new CandidateError('status', `answered HTTP ${status}`)));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? NaN);
        if (declared > maxAnswerBytes) {
          fail(new CandidateError('too_large', `answer of ${declared} bytes is over ${maxAnswerBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > maxAnswerBytes) {
            fail(new CandidateError('too_large', `answer is over ${maxAnswerBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', () => fail(new CandidateError('connection', 'the answer was cut short')));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const version = res.headers['x-model-version'];
          resolve({
            status,
            version: typeof version === 'string' ? version : undefined,
            serverSeconds: serverSeconds(res.headers['server-timing']),
            body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
          });
        });
      });
      req.end(body);
    });
  }

  /** Closes the kept connections (copies being sent fail as connection errors). */
  close(): void {
    this.agent.destroy();
  }
}
