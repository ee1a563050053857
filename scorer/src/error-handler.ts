// The one error handler of the scorer's HTTP layer: every route, express's own
// errors and the overload guard's deadline answer through it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { HttpError, errorBody } from './http-errors';
import type { RequestBodies } from './request-body';
import { sendJson } from './send-json';

export class ErrorHandler {
  /** The message each failed response was answered with, for its access log line. */
  private readonly messages = new WeakMap<ServerResponse, string>();

  constructor(
    private readonly logger: Logger,
    private readonly bodies: RequestBodies,
  ) {}

  /** Answers an error: a client's mistake with its status, anything else as a logged 500. */
  fail(req: IncomingMessage, res: ServerResponse, error: unknown, path: string): void {
    let httpError: HttpError;
    if (error instanceof HttpError) {
      httpError = error;
    } else if (isClientError(error)) {
      httpError = new HttpError(error.status, error.expose && error.message ? error.message : 'bad request');
    } else {
      this.logger.error({ reqId: res.getHeader('x-request-id'), err: error, path }, 'unexpected error');
      httpError = new HttpError(500, 'internal error; the request id is in the x-request-id header');
    }
    if (res.headersSent) {
      // Answered already (the deadline passed first); a half-sent answer is cut.
      if (!res.writableEnded) res.destroy();
      return;
    }
    this.messages.set(res, httpError.message);
    // A body nobody will read: thrown away up to MAX_BODY_BYTES, so the answer
    // reaches a client that is still sending and no client streams without end.
    this.bodies.discardRest(req, res);
    for (const [name, value] of Object.entries(httpError.headers)) res.setHeader(name, value);
    sendJson(res, httpError.status, errorBody(httpError));
  }

  /** The error message a response was answered with, if it failed. */
  messageOf(res: ServerResponse): string | undefined {
    return this.messages.get(res);
  }
}

function isClientError(error: unknown): error is { status: number; expose?: boolean; message?: string } {
  const status = (error as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}
