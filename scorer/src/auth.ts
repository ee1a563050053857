// API keys: clients send `x-api-key: KEY` or `Authorization: Bearer KEY`. Keys are
// compared as sha256 digests with timingSafeEqual against every configured key,
// so the time taken does not depend on how much of a key matched. The key file
// is watched: a rotated Secret takes effect without a restart.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { HttpError } from './http-errors';
import { bearerChallenge, looksLikeJwt, type OidcVerifier } from './oidc';

export class ApiKeys {
  private digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  /** Takes the keys of `other` (a reloaded file) in place of these. */
  replace(other: ApiKeys): void {
    this.digests = other.digests;
  }

  /** One key per line; blank lines and lines starting with # are ignored. */
  static parse(fileContent: string): ApiKeys {
    const keys = fileContent
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    return new ApiKeys(keys);
  }

  get size(): number {
    return this.digests.length;
  }

  accepts(headers: IncomingHttpHeaders): boolean {
    const presented = presentedKey(headers);
    if (presented === undefined) return false;
    const candidate = digest(presented);
    let match = false;
    for (const known of this.digests) match = timingSafeEqual(candidate, known) || match;
    return match;
  }
}

function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header.trim();
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return undefined;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export interface KeyFileWatch {
  stop(): void;
}

/**
 * Reloads `keys` from `path` when its content changes: polled every
 * `intervalMs`, and checked at once when its directory changes. The kubelet
 * updates a Secret volume by writing a new directory and renaming the `..data`
 * symlink over the old one, so the path is read again, never kept open. A file
 * that cannot be read or holds no key keeps the keys loaded before (a warning is
 * logged once): a half-written rotation must not lock out every client.
 */
export function watchApiKeysFile(
  path: string,
  keys: ApiKeys,
  options: { intervalMs: number; logger: Logger },
): KeyFileWatch {
  const { logger } = options;
  let seen = contentDigest(path);
  let problem: string | undefined;
  const warn = (message: string) => {
    if (problem === message) return;
    problem = message;
    logger.warn({ file: path }, message);
  };
  const check = () => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      warn(`API_KEYS_FILE cannot be read (${code}); keeping the keys loaded before`);
      return;
    }
    const now = digest(text).toString('hex');
    if (now === seen) return;
    seen = now;
    const next = ApiKeys.parse(text);
    if (next.size === 0) {
      warn('API_KEYS_FILE holds no key; keeping the keys loaded before');
      return;
    }
    problem = undefined;
    keys.replace(next);
    logger.info({ file: path, keys: next.size }, 'API keys reloaded');
  };
  const timer = setInterval(check, options.intervalMs);
  timer.unref();
  let soon: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, () => {
      // Several events arrive for one update; read once they settle.
      clearTimeout(soon);
      soon = setTimeout(check, 100);
      soon.unref();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // Polling alone still picks up the change.
  }
  return {
    stop() {
      clearInterval(timer);
      clearTimeout(soon);
      watcher?.close();
    },
  };
}

function contentDigest(path: string): string | undefined {
  try {
    return digest(readFileSync(path, 'utf8')).toString('hex');
  } catch {
    return undefined;
  }
}

/**
 * Who may call the authenticated routes: API keys, OIDC bearer tokens, or both.
 * With both, either is accepted: an x-api-key or a bearer that is a known key
 * passes; any other bearer that has the shape of a JWT is verified as a token.
 * Resolves when the caller is accepted, rejects with the HttpError to answer.
 */
export class CallerAuth {
  constructor(
    readonly keys: ApiKeys | undefined,
    readonly oidc: OidcVerifier | undefined,
  ) {}

  get enabled(): boolean {
    return this.keys !== undefined || this.oidc !== undefined;
  }

  /**
   * undefined when the caller is accepted at once (nothing configured, or a known
   * API key: the handler runs without waiting); otherwise a promise of the token check.
   */
  check(headers: IncomingHttpHeaders): Promise<void> | undefined {
    if (!this.enabled) return undefined;
    if (this.keys?.accepts(headers) === true) return undefined;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')?.[1];
    if (this.oidc !== undefined && bearer !== undefined && looksLikeJwt(bearer)) {
      return this.oidc.verify(bearer).then(() => undefined);
    }
    return Promise.reject(this.missing(headers));
  }

  private missing(headers: IncomingHttpHeaders): HttpError {
    const presented = headers.authorization !== undefined || headers['x-api-key'] !== undefined;
    const ways = [
      ...(this.oidc ? ['an access token as Authorization: Bearer TOKEN'] : []),
      ...(this.keys ? ['an API key as x-api-key: KEY or Authorization: Bearer KEY'] : []),
    ].join(', or ');
    const what = this.keys ? 'missing or unknown API key' : 'missing bearer token';
    // RFC 6750 §3.1: no error code when the request carried no credentials.
    return new HttpError(401, `${what}: send ${ways}`, undefined, {
      'www-authenticate': presented
        ? bearerChallenge('invalid_token', this.keys ? 'unknown API key or token' : 'not a bearer token')
        : bearerChallenge(),
    });
  }
}
