// The scorer's HTTP errors and the JSON request body reader used by every POST.

import type { IncomingMessage } from 'node:http';
import type { RequestProblem } from './request-schema';

/** An error a client caused (or may retry); answered with its status and a JSON body. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly details: readonly RequestProblem[] | undefined = undefined,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: string;
  details?: readonly RequestProblem[];
}

export function errorBody(error: HttpError): ErrorBody {
  return error.details === undefined
    ? { error: error.message }
    : { error: error.message, details: error.details };
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** Reads and parses a JSON body of at most `maxBytes` bytes. */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type === undefined || !JSON_TYPE.test(type)) {
    req.resume();
    return Promise.reject(
      new HttpError(
        415,
        `the body must be JSON: send Content-Type: application/json (got ${type ?? 'none'})`,
      ),
    );
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    req.resume();
    return Promise.reject(
      new HttpError(415, `Content-Encoding ${encoding} is not supported; send the body uncompressed`),
    );
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) {
    req.resume();
    return Promise.reject(tooLarge(maxBytes, { connection: 'close' }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const fail = (error: HttpError) => {
      if (done) return;
      done = true;
      chunks.length = 0;
      reject(error);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      total += chunk.length;
      if (total > maxBytes) {
        // Stop buffering; the connection is closed after the 413 goes out.
        fail(tooLarge(maxBytes, { connection: 'close' }));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => fail(new HttpError(400, 'the request body could not be read')));
    req.on('aborted', () => fail(new HttpError(400, 'the client aborted the request')));
    req.on('end', () => {
      if (done) return;
      done = true;
      const text =
        chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
      if (text.length === 0) {
        reject(new HttpError(400, 'the body is empty; send a JSON object'));
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(new HttpError(400, `the body is not valid JSON: ${(error as Error).message}`));
      }
    });
  });
}

function tooLarge(maxBytes: number, headers: Record<string, string>): HttpError {
  return new HttpError(
    413,
    `the body is over the limit of ${maxBytes} bytes; split the batch into smaller requests`,
    undefined,
    headers,
  );
}
