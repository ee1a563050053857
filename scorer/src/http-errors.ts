// The scorer's HTTP errors: a status, a message that says what to do, and the
// details of a request's problems.

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
