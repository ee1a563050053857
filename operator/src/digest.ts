/**
 * The model check before a rollout: download spec.model.uri and compare its
 * SHA-256 with spec.model.sha256. Verified (uri, sha256) pairs are remembered so
 * a resync or a restart of the reconcile does not download the model again.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { Reasons } from './api/types';
import type { Blocked } from './status';

export interface ModelRef {
  uri: string;
  sha256: string;
}

export type VerifyResult = { ok: true; skipped?: string } | ({ ok: false } & Blocked);

export interface VerifyOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Extra trusted CA certificates (PEM) for https. */
  ca?: string | Buffer;
  /** Azure SAS token appended as the query string; never logged or reported. */
  sasToken?: string;
}

const MAX_REDIRECTS = 3;

/** Downloads the model once and reports whether its digest matches. */
export function fetchAndHash(uri: string, opts: VerifyOptions): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolveOnce, rejectOnce) => {
    let settled = false;
    const resolve = (v: { sha256: string; bytes: number }) => {
      if (settled) return;
      settled = true;
      resolveOnce(v);
    };
    const reject = (e: Error) => {
      if (settled) return;
      settled = true;
      rejectOnce(e);
    };
    const deadline = Date.now() + opts.timeoutMs;
    const get = (target: string, redirects: number): void => {
      const url = new URL(target);
      if (opts.sasToken && redirects === 0) {
        url.search = url.search
          ? `${url.search}&${opts.sasToken.replace(/^\?/, '')}`
          : `?${opts.sasToken.replace(/^\?/, '')}`;
      }
      const lib = url.protocol === 'https:' ? https : http;
      const reqOpts: https.RequestOptions = { timeout: Math.max(1, deadline - Date.now()) };
      // Extra CAs are added to, not instead of, the system's trusted roots.
      if (opts.ca && url.protocol === 'https:') reqOpts.ca = [...tls.rootCertificates, opts.ca.toString()];
      const req = lib.get(url, reqOpts, (res) => {
        const code = res.statusCode ?? 0;
        if (code >= 300 && code < 400 && res.headers.location && redirects < MAX_REDIRECTS) {
          res.resume();
          get(new URL(res.headers.location, url).toString(), redirects + 1);
          return;
        }
        if (code !== 200) {
          res.resume();
          reject(new Error(`GET ${uri} answered HTTP ${code} ${res.statusMessage ?? ''}`.trim()));
          return;
        }
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > opts.maxBytes) {
            reject(new Error(`GET ${uri} returned more than ${opts.maxBytes} bytes (MODEL_MAX_MEGABYTES)`));
            res.destroy();
            req.destroy();
            return;
          }
          hash.update(chunk);
        });
        res.on('end', () => resolve({ sha256: hash.digest('hex'), bytes }));
        res.on('error', (err) => reject(new Error(`GET ${uri} failed: ${err.message}`)));
      });
      req.on('timeout', () =>
        req.destroy(new Error(`GET ${uri} took longer than ${opts.timeoutMs / 1000} s`)),
      );
      req.on('error', (err) => reject(new Error(`GET ${uri} failed: ${err.message}`)));
    };
    try {
      get(uri, 0);
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

export class DigestVerifier {
  private readonly verified = new Map<string, true>();

  constructor(
    private readonly maxEntries = 1000,
    private readonly fetcher: typeof fetchAndHash = fetchAndHash,
  ) {}

  /** Pairs verified so far (for metrics and tests). */
  get cacheSize(): number {
    return this.verified.size;
  }

  async verify(model: ModelRef, opts: VerifyOptions): Promise<VerifyResult & { cached?: boolean }> {
    if (model.uri.startsWith('file://')) {
      return {
        ok: true,
        skipped: 'file:// models live in the scorer image or a volume; the scorer checks them at load',
      };
    }
    const key = `${model.uri}\n${model.sha256}`;
    if (this.verified.has(key)) return { ok: true, cached: true };
    let got: { sha256: string; bytes: number };
    try {
      got = await this.fetcher(model.uri, opts);
    } catch (err) {
      return {
        ok: false,
        reason: Reasons.ModelUnreachable,
        message: `cannot download the model: ${(err as Error).message}; check spec.model.uri and spec.model.credentialsSecretRef`,
      };
    }
    if (got.sha256 !== model.sha256) {
      return {
        ok: false,
        reason: Reasons.ModelDigestMismatch,
        message: `the file at ${model.uri} (${got.bytes} bytes) has sha256 ${got.sha256}, spec.model.sha256 is ${model.sha256}; publish the right file or correct spec.model.sha256`,
      };
    }
    if (this.verified.size >= this.maxEntries) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(key, true);
    return { ok: true };
  }
}
