// Why a model download failed, as a kind a caller can act on and a message that
// names the cause. Messages name the URI without its query string, so a SAS token
// never appears in one.

export type FetchFailure =
  /** The URI cannot be parsed, has user information, or the SAS token is malformed. */
  | 'invalid-uri'
  /** Not https (or http in local mode). */
  | 'scheme-not-allowed'
  /** The host is not on the allow-list. */
  | 'host-not-allowed'
  /** The server answered 3xx: redirects are never followed. */
  | 'redirect-refused'
  /** Any other answer than 200. */
  | 'http-status'
  /** Connection refused, reset, DNS, TLS... */
  | 'network'
  /** The body ended before Content-Length bytes arrived. */
  | 'truncated'
  /** Content-Length or the bytes received are over the limit. */
  | 'too-large'
  /** The total deadline of the fetch passed (connect, headers, body and retries). */
  | 'deadline'
  /** The caller cancelled the fetch. */
  | 'aborted'
  /** No access token from the workload identity (token file, token endpoint). */
  | 'token';

/** Answers worth another attempt: the server or something on the way was busy. */
export const TRANSIENT_STATUS: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

export class ModelFetchError extends Error {
  override name = 'ModelFetchError';

  constructor(
    readonly kind: FetchFailure,
    message: string,
    /** Worth retrying (network errors, truncated bodies, 408/425/429/5xx). */
    readonly transient = false,
    /** The HTTP status, for http-status and redirect-refused. */
    readonly status?: number,
    /** Attempts made before giving up. */
    readonly attempts = 1,
  ) {
    super(message);
  }

  withAttempts(attempts: number, message = this.message): ModelFetchError {
    return new ModelFetchError(this.kind, message, this.transient, this.status, attempts);
  }
}

/**
 * What may be told about a failed download to someone who only wrote the URI
 * (a FnolModel's status, an Event): the class of the answer and nothing the
 * server said, so a request to an arbitrary host is no oracle. The refusals
 * made before any request name their cause.
 */
export function publicSummary(error: ModelFetchError): string {
  switch (error.kind) {
    case 'http-status': {
      const status = error.status ?? 0;
      return status >= 400 && status < 600 ? `HTTP ${Math.floor(status / 100)}xx` : 'unexpected HTTP status';
    }
    case 'redirect-refused':
      return 'HTTP 3xx (redirects are not followed)';
    case 'network':
    case 'truncated':
      return 'network error';
    case 'deadline':
      return 'deadline exceeded';
    case 'too-large':
      return 'the model is larger than the size limit';
    case 'aborted':
      return 'cancelled';
    case 'invalid-uri':
      return 'invalid URI';
    case 'scheme-not-allowed':
      return 'scheme not allowed';
    case 'host-not-allowed':
      return 'host not allowed';
    case 'token':
      return 'no access token from the workload identity';
  }
}
