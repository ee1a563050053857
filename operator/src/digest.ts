/**
 * The model check before a rollout: download spec.model.uri through the shared
 * fetcher (lib/model-fetch) and compare its SHA-256 with spec.model.sha256.
 *
 * Checks run off the reconcile workers: a reconcile asks for the state of its
 * FnolModel's check and returns at once; the check runs in the background, with
 * the fetcher's total deadline, and queues the FnolModel again when it finishes.
 * So a model server that answers slowly (or never) holds no worker, and the
 * reconciles of every other FnolModel go on. Running checks are capped overall
 * and per namespace, so one namespace's slow models cannot take every slot.
 *
 * Verified (uri, sha256) pairs are remembered, so a resync or a restart of the
 * reconcile does not download the model again. A failed check is tried again
 * after a back-off that this module keeps per FnolModel.
 */
import type { Logger } from 'pino';
import {
  describeUri,
  fetchModelFile,
  ModelFetchError,
  publicSummary,
  type BearerTokenSource,
  type FetchPolicy,
} from '@fnol/model-fetch';
import { Reasons } from '@fnol/api';
import type { Blocked } from './status';

export interface CheckRequest {
  /** namespace/name of the FnolModel. */
  key: string;
  namespace: string;
  uri: string;
  sha256: string;
  /** Which credentials the check uses (Secret name and key, '' for none): a change starts a new check. */
  credentials: string;
  /** Azure SAS token appended as the query string; never logged or reported. */
  sasToken?: string;
  /** The FnolModel field the model comes from, for messages: spec.model (default) or spec.canary.model. */
  field?: string;
  /** spec.model.identity is set: the check uses the operator's own workload identity. */
  identity?: boolean;
}

export type CheckState =
  /** The model may be rolled out. `cached`: verified earlier, possibly for another FnolModel. */
  | { state: 'verified'; cached: boolean }
  /** The check is waiting or running; `previous` is the last failure of this same check, if any. */
  | { state: 'pending'; previous?: Blocked }
  /** The check failed; it runs again once `retryInMs` has passed and the FnolModel is reconciled. */
  | { state: 'failed'; blocked: Blocked; retryInMs: number };

export type CheckOutcome = 'ok' | 'cached' | 'mismatch' | 'unreachable' | 'refused';

export interface ModelChecksOptions {
  policy: FetchPolicy;
  /** Total time of one check (connect, headers, body). */
  deadlineMs: number;
  maxBytes: number;
  /** Extra trusted CA certificates (PEM) for https. */
  ca?: string | Buffer;
  /** The operator's own workload identity, for FnolModels with spec.model.identity. */
  bearer?: BearerTokenSource;
  /** Checks running at once, over all FnolModels. */
  maxConcurrent: number;
  /** Checks running at once for the FnolModels of one namespace. */
  perNamespace: number;
  /** A check finished: the FnolModel should be reconciled again. */
  onDone: (key: string) => void;
  onOutcome?: (outcome: CheckOutcome) => void;
  log: Logger;
  /** Back-off after the n-th failure: base × 2^(n−1), capped. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  maxVerified?: number;
  now?: () => number;
}

interface Entry {
  request: CheckRequest;
  fingerprint: string;
  phase: 'waiting' | 'running' | 'done';
  controller?: AbortController;
  /** undefined while not done; the failure of the last run otherwise (undefined: ok). */
  failure?: Blocked;
  /** The failure of the previous run of this same check, reported while it runs again. */
  previous?: Blocked;
  failures: number;
  notBefore: number;
}

const hint = (field: string, identity = false) =>
  identity
    ? `check ${field}.uri, and that the operator's and the scorer's managed identities have the Storage Blob Data Reader role on its container`
    : `check ${field}.uri and ${field}.credentialsSecretRef`;

function fingerprint(r: CheckRequest): string {
  return `${r.uri}\n${r.sha256}\n${r.credentials}`;
}

export class ModelChecks {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Entry[] = [];
  private readonly active = new Set<Entry>();
  private readonly perNamespace = new Map<string, number>();
  private readonly verified = new Map<string, true>();
  private closed = false;

  constructor(private readonly opts: ModelChecksOptions) {}

  /** Checks running now. */
  get running(): number {
    return this.active.size;
  }

  /** Checks waiting for a free slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Pairs verified so far. */
  get cacheSize(): number {
    return this.verified.size;
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** What the reconcile of `request.key` should do about its model now; starts a check if needed. */
  check(request: CheckRequest): CheckState {
    const pair = `${request.uri}\n${request.sha256}`;
    let entry = this.entries.get(request.key);
    if (this.verified.has(pair)) {
      const justChecked =
        entry !== undefined &&
        entry.phase === 'done' &&
        !entry.failure &&
        entry.fingerprint === fingerprint(request);
      if (entry?.phase === 'done') this.entries.delete(request.key);
      else if (entry) this.cancel(request.key);
      if (!justChecked) this.opts.onOutcome?.('cached');
      return { state: 'verified', cached: !justChecked };
    }
    if (entry && entry.fingerprint !== fingerprint(request)) {
      this.cancel(request.key);
      entry = undefined;
    }
    if (!entry) {
      entry = { request, fingerprint: fingerprint(request), phase: 'waiting', failures: 0, notBefore: 0 };
      this.entries.set(request.key, entry);
      this.enqueue(entry);
      return { state: 'pending' };
    }
    if (entry.phase !== 'done')
      return { state: 'pending', ...(entry.previous ? { previous: entry.previous } : {}) };
    if (!entry.failure) {
      // Verified, then evicted from the cache by newer pairs: check again.
      this.entries.delete(request.key);
      return this.check(request);
    }
    const wait = entry.notBefore - this.now();
    if (wait > 0) return { state: 'failed', blocked: entry.failure, retryInMs: wait };
    // Time for another try, with the credentials as they are now.
    entry.previous = entry.failure;
    entry.failure = undefined;
    entry.request = request;
    entry.phase = 'waiting';
    this.enqueue(entry);
    return { state: 'pending', previous: entry.previous };
  }

  /** Forgets the FnolModel's check, stopping its download (spec changed, FnolModel deleted, refused). */
  cancel(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    const i = this.queue.indexOf(entry);
    if (i >= 0) this.queue.splice(i, 1);
    if (this.active.has(entry)) {
      this.release(entry);
      entry.controller?.abort();
      this.pump();
    }
  }

  /** Stops every check; nothing is queued again afterwards. */
  close(): void {
    this.closed = true;
    for (const key of [...this.entries.keys()]) this.cancel(key);
  }

  private enqueue(entry: Entry): void {
    this.queue.push(entry);
    this.pump();
  }

  private release(entry: Entry): void {
    this.active.delete(entry);
    const ns = entry.request.namespace;
    const n = (this.perNamespace.get(ns) ?? 1) - 1;
    if (n > 0) this.perNamespace.set(ns, n);
    else this.perNamespace.delete(ns);
  }

  /** Starts waiting checks, oldest first, while there are free slots for their namespace. */
  private pump(): void {
    if (this.closed) return;
    for (let i = 0; i < this.queue.length && this.active.size < this.opts.maxConcurrent;) {
      const entry = this.queue[i]!;
      const ns = entry.request.namespace;
      if ((this.perNamespace.get(ns) ?? 0) >= this.opts.perNamespace) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.perNamespace.set(ns, (this.perNamespace.get(ns) ?? 0) + 1);
      this.active.add(entry);
      entry.phase = 'running';
      entry.controller = new AbortController();
      void this.run(entry, entry.controller.signal);
    }
  }

  private async run(entry: Entry, signal: AbortSignal): Promise<void> {
    const { key, uri, sha256, sasToken } = entry.request;
    const field = entry.request.field ?? 'spec.model';
    const log = this.opts.log.child({ fnolmodel: key, uri: safeUri(uri) });
    const started = Date.now();
    let failure: Blocked | undefined;
    let outcome: CheckOutcome;
    try {
      if (entry.request.identity && this.opts.bearer === undefined) {
        throw new ModelFetchError(
          'token',
          `${field}.identity is set but the operator has no workload identity of its own to check the model's digest; ` +
            "give the operator's ServiceAccount a federated credential and the Storage Blob Data Reader role (docs/install-aks.md), or set VERIFY_MODEL_DIGEST=false",
        );
      }
      const got = await fetchModelFile(uri, {
        policy: this.opts.policy,
        deadlineMs: this.opts.deadlineMs,
        maxBytes: this.opts.maxBytes,
        signal,
        ...(sasToken !== undefined ? { sasToken } : {}),
        ...(entry.request.identity && this.opts.bearer ? { bearer: this.opts.bearer } : {}),
        ...(this.opts.ca !== undefined ? { ca: this.opts.ca } : {}),
      });
      if (got.sha256 === sha256) {
        outcome = 'ok';
        log.info({ ms: Date.now() - started, bytes: got.size }, 'model digest verified');
      } else {
        outcome = 'mismatch';
        failure = {
          reason: Reasons.ModelDigestMismatch,
          message: `the file at ${safeUri(uri)} (${got.size} bytes) has sha256 ${got.sha256}, ${field}.sha256 is ${sha256}; publish the right file or correct ${field}.sha256`,
        };
        log.warn({ got: got.sha256, want: sha256, bytes: got.size }, 'model digest mismatch');
      }
    } catch (error) {
      if (!this.active.has(entry)) return; // cancelled: nobody waits for the result
      const e =
        error instanceof ModelFetchError
          ? error
          : new ModelFetchError('network', `unexpected error (${(error as Error).name})`, false);
      if (e.kind === 'host-not-allowed' || e.kind === 'scheme-not-allowed') {
        outcome = 'refused';
        failure = { reason: Reasons.ModelHostNotAllowed, message: e.message };
      } else if (e.kind === 'token' && this.opts.bearer === undefined) {
        outcome = 'refused';
        failure = { reason: Reasons.ModelUnreachable, message: e.message };
      } else if (e.kind === 'invalid-uri') {
        outcome = 'refused';
        failure = { reason: Reasons.ModelUnreachable, message: e.message };
      } else {
        outcome = 'unreachable';
        // The status and Events are read by whoever wrote the URI: the class of the
        // answer only. The operator's log (for the admin) has the details.
        failure = {
          reason: Reasons.ModelUnreachable,
          message: `model fetch failed: ${publicSummary(e)}; ${hint(field, entry.request.identity)}`,
        };
      }
      log.warn({ err: e.message, kind: e.kind, attempts: e.attempts }, 'model check failed');
    }
    if (!this.active.has(entry)) return;
    this.release(entry);
    entry.phase = 'done';
    entry.controller = undefined;
    entry.previous = undefined;
    delete entry.request.sasToken;
    this.opts.onOutcome?.(outcome);
    if (failure) {
      entry.failure = failure;
      entry.failures++;
      const base = this.opts.retryBaseMs ?? 1000;
      entry.notBefore =
        this.now() + Math.min(this.opts.retryMaxMs ?? 300_000, base * 2 ** Math.min(entry.failures - 1, 20));
    } else {
      this.remember(`${uri}\n${sha256}`);
      entry.failures = 0;
    }
    this.pump();
    if (!this.closed) this.opts.onDone(key);
  }

  private remember(pair: string): void {
    if (this.verified.size >= (this.opts.maxVerified ?? 1000)) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(pair, true);
  }
}

/** spec.model.uri for logs and messages, without a query string. */
function safeUri(uri: string): string {
  try {
    return describeUri(new URL(uri));
  } catch {
    return '(invalid URI)';
  }
}
