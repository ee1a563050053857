// Downloads one model file: policy checked before any request, no redirects,
// one total deadline over every attempt (connect, headers, body and the back-off
// between attempts), retries with jittered exponential back-off for transient
// failures only, a size limit, and sha256 computed while streaming.
//
// node:http(s) rather than fetch(): the deadline is a timer this function holds
// until it returns, so nothing it depends on can be garbage-collected while a
// body trickles in (nodejs/undici#1926), and a redirect is an answer to
// inspect, never something followed.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { rootCertificates } from 'node:tls';
import { ModelFetchError, TRANSIENT_STATUS } from './errors';
import { STORAGE_API_VERSION, type BearerTokenSource } from './identity';
import { describePolicy, describeUri, hostAllowed, type FetchPolicy } from './policy';

export interface RetryInfo {
  /** The attempt that failed (1-based). */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: ModelFetchError;
}

export interface FetchOptions {
  readonly policy: FetchPolicy;
  /** Total time for the whole fetch, every attempt and back-off included. */
  readonly deadlineMs: number;
  readonly maxBytes: number;
  /** Attempts for transient failures; 1 means no retry. */
  readonly attempts?: number;
  /** Back-off before attempt n+1: base × 2^(n−1) × a random factor in [0.5, 1]. */
  readonly retryBaseDelayMs?: number;
  /** Azure SAS token, appended as the query string; never in a message. */
  readonly sasToken?: string;
  /**
   * An Azure AD access token source (workload identity): sent as
   * `Authorization: Bearer` with `x-ms-version`, over https only, never with a SAS token.
   */
  readonly bearer?: BearerTokenSource;
  /** Extra trusted CA certificates (PEM), added to the system's roots. */
  readonly ca?: string | Buffer;
  /** Keep the bytes (the scorer loads them); otherwise only the digest is computed. */
  readonly keepBody?: boolean;
  /** Cancels the fetch (operator shutdown, a newer spec). */
  readonly signal?: AbortSignal;
  readonly onRetry?: (info: RetryInfo) => void;
  readonly random?: () => number;
  /** Waits between attempts (tests make it instant); the deadline still ends it. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface FetchResult {
  readonly sha256: string;
  readonly size: number;
  readonly body: Buffer | undefined;
  readonly attempts: number;
}

/** Characters of a query string; anything else (space, #) would change the request. */
const QUERY = /^[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]+$/;

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Parses `uri` and checks it against the policy; returns the URL to request
 * (token appended). Throws ModelFetchError before anything is sent.
 */
export function checkTarget(uri: string, policy: FetchPolicy, sasToken?: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ModelFetchError('invalid-uri', 'the model URI is not a valid URL');
  }
  const shown = describeUri(url);
  if (url.username !== '' || url.password !== '') {
    throw new ModelFetchError(
      'invalid-uri',
      `${url.protocol}//${url.hostname}: the model URI carries user information; put credentials in a Secret, not in the URI`,
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.localMode)) {
    const hint =
      url.protocol === 'http:'
        ? 'plain http is allowed only in local mode (MODEL_LOCAL_MODE=true, local Azurite)'
        : 'only https:// models are downloaded';
    throw new ModelFetchError(
      'scheme-not-allowed',
      `${shown}: ${url.protocol} is not allowed; use https:// (${hint})`,
    );
  }
  if (!hostAllowed(url, policy.allowedHosts)) {
    throw new ModelFetchError(
      'host-not-allowed',
      `${shown}: host ${url.hostname} is not on the model host allow-list (${describePolicy(policy)}); ` +
        'publish the model to an allowed host or ask the cluster admin to extend MODEL_ALLOWED_HOSTS',
    );
  }
  if (sasToken !== undefined) {
    const token = sasToken.trim().replace(/^\?/, '');
    if (token === '' || !QUERY.test(token)) {
      throw new ModelFetchError(
        'invalid-uri',
        `${shown}: the SAS token is not a query string (empty, or with spaces or #); check the credentials Secret`,
      );
    }
    url.search = url.search === '' ? `?${token}` : `${url.search}&${token}`;
  }
  return url;
}

/** Downloads `uri` under `opts`; resolves with its sha256 (and bytes), or rejects with a ModelFetchError. */
export async function fetchModelFile(uri: string, opts: FetchOptions): Promise<FetchResult> {
  const target = checkTarget(uri, opts.policy, opts.sasToken);
  const shown = describeUri(target);
  if (opts.bearer !== undefined) {
    if (opts.sasToken !== undefined) {
      throw new ModelFetchError(
        'invalid-uri',
        `${shown}: both a SAS token and a workload identity are configured; use one of them`,
      );
    }
    if (target.protocol !== 'https:') {
      throw new ModelFetchError(
        'scheme-not-allowed',
        `${shown}: an access token is sent over https:// only; publish the model to an https endpoint`,
      );
    }
  }
  const attempts = Math.max(1, opts.attempts ?? 1);
  const random = opts.random ?? Math.random;
  const baseDelay = opts.retryBaseDelayMs ?? 500;

  // One controller and one timer for the whole fetch, held here until it returns.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), opts.deadlineMs);
  const cancel = () => deadline.abort();
  opts.signal?.addEventListener('abort', cancel, { once: true });
  let last: ModelFetchError | undefined;
  let attempt = 0;
  const stopped = (): ModelFetchError => {
    if (opts.signal?.aborted) {
      return new ModelFetchError('aborted', `${shown}: download cancelled`, false, undefined, attempt);
    }
    const tried = `after ${attempt} attempt${attempt === 1 ? '' : 's'}`;
    const lastCause = last ? `; last: ${last.message.slice(shown.length + 2)}` : '';
    return new ModelFetchError(
      'deadline',
      `${shown}: deadline exceeded: no complete download within ${seconds(opts.deadlineMs)} (${tried}${lastCause})`,
      false,
      undefined,
      attempt,
    );
  };
  try {
    for (;;) {
      attempt++;
      if (deadline.signal.aborted) throw stopped();
      try {
        const authorization =
          opts.bearer === undefined
            ? undefined
            : `Bearer ${await bearerToken(opts.bearer, shown, deadline.signal)}`;
        const got = await download(target, shown, opts, deadline.signal, authorization);
        return { ...got, attempts: attempt };
      } catch (error) {
        if (deadline.signal.aborted) throw stopped();
        const failed =
          error instanceof ModelFetchError
            ? error
            : new ModelFetchError('network', `${shown}: network error (${codeOf(error)})`, true);
        if (!failed.transient || attempt >= attempts) throw failed.withAttempts(attempt);
        last = failed;
        const delayMs = Math.round(baseDelay * 2 ** (attempt - 1) * (0.5 + random() / 2));
        opts.onRetry?.({ attempt, delayMs, error: failed });
        await sleep(delayMs, deadline.signal, opts.sleep);
      }
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', cancel);
  }
}

/** The access token, or a ModelFetchError that starts with the URI like every other. */
async function bearerToken(source: BearerTokenSource, shown: string, signal: AbortSignal): Promise<string> {
  try {
    return await source.token(signal);
  } catch (error) {
    if (!(error instanceof ModelFetchError)) {
      throw new ModelFetchError('token', `${shown}: no access token (${(error as Error).name})`);
    }
    throw new ModelFetchError(error.kind, `${shown}: ${error.message}`, error.transient, error.status);
  }
}

/** Resolves after `ms` or as soon as `signal` aborts, whichever comes first. */
function sleep(ms: number, signal: AbortSignal, wait?: (ms: number) => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    let t: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    if (wait) wait(ms).then(done, done);
    else t = setTimeout(done, ms);
  });
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code : 'unknown';
}

/** Where a refused redirect pointed, without its path or query. */
function describeLocation(location: string | undefined, base: URL): string {
  if (location === undefined) return 'without a Location';
  try {
    const to = new URL(location, base);
    return `to ${to.protocol}//${to.host}`;
  } catch {
    return 'to an invalid Location';
  }
}

/** One attempt. Settles exactly once; nothing in a callback can throw out of it. */
function download(
  target: URL,
  shown: string,
  opts: FetchOptions,
  signal: AbortSignal,
  authorization?: string,
): Promise<Omit<FetchResult, 'attempts'>> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let req: http.ClientRequest | undefined;
    const settle = (error: ModelFetchError | undefined, value?: Omit<FetchResult, 'attempts'>) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      req?.destroy();
      if (error) reject(error);
      else resolve(value!);
    };
    const fail = (kind: ModelFetchError['kind'], what: string, transient: boolean, status?: number) =>
      settle(new ModelFetchError(kind, `${shown}: ${what}`, transient, status));
    const onAbort = () => fail('aborted', 'download stopped', false);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    const options: https.RequestOptions = {
      method: 'GET',
      // A fresh connection per attempt: nothing pooled outlives the fetch.
      agent: false,
      headers: {
        'user-agent': 'fnol-model-fetch',
        accept: '*/*',
        ...(authorization !== undefined ? { authorization, 'x-ms-version': STORAGE_API_VERSION } : {}),
      },
    };
    if (opts.ca !== undefined && target.protocol === 'https:') {
      options.ca = [...rootCertificates, opts.ca.toString()];
    }
    const onResponse = (res: http.IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return fail(
          'redirect-refused',
          `redirect refused: HTTP ${status} ${describeLocation(res.headers.location, target)} ` +
            '(redirects are not followed; point the URI at the file itself)',
          false,
          status,
        );
      }
      if (status !== 200) {
        res.resume();
        return fail('http-status', `HTTP ${status}`, TRANSIENT_STATUS.has(status), status);
      }
      const lengthHeader = res.headers['content-length'];
      const declared =
        lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
      if (declared !== undefined && declared > opts.maxBytes) {
        return fail(
          'too-large',
          `too large: Content-Length ${declared} is over the limit of ${opts.maxBytes} bytes`,
          false,
        );
      }
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      let size = 0;
      let ended = false;
      const cutShort = (code: string) => {
        if (declared !== undefined && size < declared) {
          fail('truncated', `truncated file: ${size} of ${declared} bytes (Content-Length)`, true);
        } else fail('network', `network error (${code})`, true);
      };
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        size += chunk.length;
        if (size > opts.maxBytes) {
          return fail('too-large', `too large: more than ${opts.maxBytes} bytes`, false);
        }
        hash.update(chunk);
        if (opts.keepBody) chunks.push(chunk);
      });
      res.on('end', () => {
        ended = true;
        if (declared !== undefined && size !== declared) return cutShort('ECONNRESET');
        settle(undefined, {
          sha256: hash.digest('hex'),
          size,
          body: opts.keepBody ? Buffer.concat(chunks, size) : undefined,
        });
      });
      res.on('error', (error) => cutShort(codeOf(error)));
      res.on('close', () => {
        if (!ended) cutShort('ECONNRESET');
      });
    };
    try {
      const lib = target.protocol === 'https:' ? https : http;
      req = lib.request(target, options, (res) => {
        try {
          onResponse(res);
        } catch (error) {
          settle(new ModelFetchError('network', `${shown}: network error (${codeOf(error)})`, true));
        }
      });
      req.on('error', (error) => fail('network', `network error (${codeOf(error)})`, true));
      req.end();
    } catch (error) {
      fail('network', `network error (${codeOf(error)})`, true);
    }
  });
}
