// API keys: clients send `x-api-key: KEY` or `Authorization: Bearer KEY`. Keys are
// compared as sha256 digests with timingSafeEqual against every configured key,
// so the time taken does not depend on how much of a key matched.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export class ApiKeys {
  private readonly digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
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
