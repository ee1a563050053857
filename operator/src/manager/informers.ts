/**
 * Informers: list+watch caches of the objects the operator reads, so a
 * reconcile reads memory instead of the API server.
 *
 * One Informer per kind and watched namespace (or cluster-wide when the
 * operator watches all namespaces), each filtered by a label selector on the
 * server: an object without the operator's labels is never sent, so memory grows
 * with what the operator owns, not with the cluster. The cache drops
 * metadata.managedFields, which nothing here reads and which is often the
 * largest part of an object.
 *
 * Protocol (client-go's reflector): LIST (resourceVersion of the list), then
 * WATCH from that version with bookmarks; when the server ends a watch (its
 * timeout) the next one starts from the last version seen (a bookmark moves it
 * on without an object); 410 Gone (the version is too old) means relist, and
 * the relist's differences are delivered as events, deletions included. Any
 * other failure is retried with back-off (0.5 s doubling to 30 s).
 *
 * An optional kind (one whose CRDs a cluster may lack, the Gateway API's
 * HTTPRoute) answered 404 (or 403) on its list counts as synced and empty, is marked
 * unavailable, and is listed again every 5 minutes: installing the CRDs later
 * needs no restart, and a missing kind neither blocks readiness nor spins.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiPath, type ResourceKind } from '@fnol/api';
import { KubeError, type KubeClient } from '../kube/client';

/** How long an optional kind the server does not serve waits before the next list. */
export const ABSENT_RETRY_MS = 5 * 60_000;

export type InformerEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type InformerHandler<T> = (type: InformerEventType, obj: T) => void;

export interface InformerOptions {
  kind: ResourceKind & { kind: string };
  /** A namespace, or undefined for all namespaces. */
  namespace?: string;
  /** Server-side label selector; only matching objects enter the cache. */
  labelSelector?: string;
  /** Seconds the server keeps one watch open before ending it (the client then re-watches). */
  watchTimeoutSeconds?: number;
  /** The kind may not exist on the server (404 on list): see the module comment. */
  optional?: boolean;
  /** How long an unavailable optional kind waits before the next list. */
  absentRetryMs?: number;
  /**
   * A label the cache indexes by namespace and value, so list() with that label
   * looks at the matching objects only instead of every cached one.
   */
  indexLabel?: string;
  log: Logger;
}

/** Key of a namespaced object in a cache: namespace/name. */
export function objectKey(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/**
 * Is a newer than b? resourceVersions are opaque to clients in general; the
 * API server backed by etcd hands out increasing integers, which is what this
 * compares. When either is not an integer the incoming object (a) wins.
 */
export function newerOrSame(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) >= BigInt(b);
}

function strip<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

export class Informer<T extends KubernetesObject = KubernetesObject> {
  private readonly store = new Map<string, T>();
  /** opts.indexLabel: namespace/value → keys of the objects with that label value. */
  private readonly index = new Map<string, Set<string>>();
  private readonly handlers: Array<InformerHandler<T>> = [];
  private resourceVersion = '';
  private stopped = true;
  private hasSynced = false;
  private current: { abort: () => void } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private syncWaiters: Array<() => void> = [];
  private missing = false;
  /** Relists done (the first list included); for tests and logs. */
  lists = 0;

  constructor(
    private readonly client: KubeClient,
    readonly opts: InformerOptions,
  ) {}

  get kind(): string {
    return this.opts.kind.kind;
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  get size(): number {
    return this.store.size;
  }

  /** False while the server answers 404 for an optional kind (its CRDs are not installed). */
  get available(): boolean {
    return !this.missing;
  }

  onEvent(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  /** The cached object, or undefined. */
  get(namespace: string, name: string): T | undefined {
    return this.store.get(`${namespace}/${name}`);
  }

  private indexKey(obj: T | undefined): string | undefined {
    const label = this.opts.indexLabel;
    const value = label === undefined ? undefined : obj?.metadata?.labels?.[label];
    return value === undefined ? undefined : `${obj?.metadata?.namespace ?? ''}/${value}`;
  }

  /** Every change of the store goes through put and remove, which keep the index. */
  private put(key: string, obj: T): void {
    const before = this.indexKey(this.store.get(key));
    const after = this.indexKey(obj);
    this.store.set(key, obj);
    if (before === after) return;
    if (before !== undefined) this.unindex(before, key);
    if (after !== undefined) {
      const keys = this.index.get(after) ?? new Set<string>();
      keys.add(key);
      this.index.set(after, keys);
    }
  }

  private remove(key: string): void {
    const before = this.indexKey(this.store.get(key));
    this.store.delete(key);
    if (before !== undefined) this.unindex(before, key);
  }

  private unindex(indexKey: string, key: string): void {
    const keys = this.index.get(indexKey);
    keys?.delete(key);
    if (keys?.size === 0) this.index.delete(indexKey);
  }

  /** Cached objects, optionally those of one namespace whose labels include `labels`. */
  list(namespace?: string, labels: Record<string, string> = {}): T[] {
    const out: T[] = [];
    const label = this.opts.indexLabel;
    const indexed = label === undefined ? undefined : labels[label];
    const candidates =
      namespace !== undefined && indexed !== undefined
        ? [...(this.index.get(`${namespace}/${indexed}`) ?? [])].map((k) => this.store.get(k)!)
        : this.store.values();
    for (const obj of candidates) {
      if (namespace !== undefined && obj.metadata?.namespace !== namespace) continue;
      const l = obj.metadata?.labels ?? {};
      if (Object.entries(labels).every(([k, v]) => l[k] === v)) out.push(obj);
    }
    return out;
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  /**
   * Puts an object the operator itself just received from the API server (the
   * answer to its apply or status patch) into the cache, unless the cache
   * already has a newer version. The watch event of the same write follows.
   */
  observe(obj: T): void {
    if (this.opts.namespace !== undefined && obj.metadata?.namespace !== this.opts.namespace) return;
    const key = objectKey(obj);
    const cached = this.store.get(key);
    if (cached && !newerOrSame(obj.metadata?.resourceVersion, cached.metadata?.resourceVersion)) return;
    this.put(key, strip(obj));
  }

  /** Starts the list+watch loop; resolves once the first list is in the cache. */
  start(): Promise<void> {
    if (!this.stopped) return this.waitForSync();
    this.stopped = false;
    void this.run(true);
    return this.waitForSync();
  }

  /**
   * Starts watching from a known version without listing first, keeping the
   * cache (a stopped informer resuming). A version the server no longer has is
   * answered 410 Gone, and the informer lists again.
   */
  resumeFrom(resourceVersion: string): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.resourceVersion = resourceVersion;
    void this.run(false);
  }

  /** The resourceVersion the next watch starts from. */
  get version(): string {
    return this.resourceVersion;
  }

  waitForSync(): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.current?.abort();
    this.current = undefined;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private path(): string {
    return apiPath(this.opts.kind, { namespace: this.opts.namespace });
  }

  private emit(type: InformerEventType, obj: T): void {
    for (const h of this.handlers) {
      try {
        h(type, obj);
      } catch (err) {
        this.opts.log.error({ kind: this.kind, err: (err as Error).message }, 'informer handler failed');
      }
    }
  }

  /** LIST, then replace the cache; differences with what was cached become events. */
  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.path(), this.opts.labelSelector);
    this.lists++;
    const seen = new Set<string>();
    for (const item of list.items) {
      // A list's items carry no kind.
      const obj = strip({ ...item, apiVersion: this.apiVersion(), kind: this.kind } as T);
      const key = objectKey(obj);
      seen.add(key);
      const cached = this.store.get(key);
      if (cached && cached.metadata?.resourceVersion === obj.metadata?.resourceVersion) continue;
      if (cached && !newerOrSame(obj.metadata?.resourceVersion, cached.metadata?.resourceVersion)) continue;
      this.put(key, obj);
      this.emit(cached ? 'MODIFIED' : 'ADDED', obj);
    }
    for (const [key, cached] of this.store) {
      if (seen.has(key)) continue;
      this.remove(key);
      this.emit('DELETED', cached);
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    if (this.missing) this.opts.log.info({ kind: this.kind }, 'the kind is served now; watching it');
    this.missing = false;
    this.markSynced();
  }

  private markSynced(): void {
    if (!this.hasSynced) {
      this.hasSynced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** An optional kind the server does not serve: empty, synced, listed again later. */
  private markMissing(statusCode: number): void {
    if (!this.missing) {
      this.opts.log.warn(
        { kind: this.kind, retryInMs: this.opts.absentRetryMs ?? ABSENT_RETRY_MS, statusCode },
        statusCode === 403
          ? 'the operator may not list this kind (RBAC); listing again later'
          : 'the API server does not serve this kind (CRDs not installed); listing again later',
      );
    }
    this.missing = true;
    for (const [key, cached] of this.store) {
      this.remove(key);
      this.emit('DELETED', cached);
    }
    this.resourceVersion = '';
    this.markSynced();
  }

  private apiVersion(): string {
    const k = this.opts.kind;
    return k.group === '' ? k.version : `${k.group}/${k.version}`;
  }

  private onWatchEvent(ev: { type: string; object: unknown }): void {
    const obj = ev.object as T;
    const rv = obj?.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (ev.type === 'ERROR') {
      const st = ev.object as { code?: number; reason?: string; message?: string };
      throw new KubeError(st.code ?? 500, st.reason ?? 'Unknown', `watch ${this.kind}: ${st.message ?? ''}`);
    }
    if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED' && ev.type !== 'DELETED') return;
    if (rv) this.resourceVersion = rv;
    strip(obj);
    const key = objectKey(obj);
    if (ev.type === 'DELETED') {
      this.remove(key);
    } else {
      const cached = this.store.get(key);
      if (!cached || newerOrSame(rv, cached.metadata?.resourceVersion)) this.put(key, obj);
    }
    this.emit(ev.type, obj);
  }

  private async run(needList: boolean): Promise<void> {
    if (this.stopped) return;
    let relist = needList;
    try {
      if (relist) await this.relist();
      relist = false;
      if (this.stopped) return;
      let watchError: unknown;
      const w = this.client.watch(
        this.path(),
        {
          labelSelector: this.opts.labelSelector,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
        },
        (ev) => {
          if (watchError) return;
          try {
            this.onWatchEvent(ev);
            this.failures = 0;
          } catch (err) {
            watchError = err;
            w.abort();
          }
        },
      );
      this.current = w;
      await w.done;
      if (watchError) throw watchError instanceof Error ? watchError : new Error(String(watchError));
      // The server ended the watch (timeout): watch again from the last version.
      this.schedule(false, 0);
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof KubeError && err.statusCode === 410) {
        this.opts.log.info({ kind: this.kind }, 'watch expired (410 Gone); listing again');
        this.schedule(true, 0);
        return;
      }
      // 403: an install whose RBAC predates the kind; treated like a missing
      // kind so the operator still starts and serves every other object.
      if (
        this.opts.optional &&
        err instanceof KubeError &&
        (err.statusCode === 404 || err.statusCode === 403)
      ) {
        if (relist) {
          this.markMissing(err.statusCode);
          this.schedule(true, this.opts.absentRetryMs ?? ABSENT_RETRY_MS);
        } else {
          // The CRDs went away while watching: list again, which finds out.
          this.schedule(true, 0);
        }
        return;
      }
      this.failures++;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.failures - 1, 6));
      this.opts.log.warn(
        { kind: this.kind, err: (err as Error).message, retryInMs: delay },
        'list/watch failed; retrying',
      );
      // After a failed list the cache is whatever it was; after a failed watch
      // the version may be too old, which the next watch reports as 410.
      this.schedule(relist || !this.resourceVersion, delay);
    }
  }

  private schedule(relist: boolean, delayMs: number): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => void this.run(relist), delayMs);
    this.retryTimer.unref();
  }
}

/** The reads a reconcile makes, all from the caches. */
export interface ReadCache {
  model<M extends KubernetesObject>(namespace: string, name: string): M | undefined;
  child(kind: string, namespace: string, name: string): KubernetesObject | undefined;
  /** The ReplicaSets in a namespace whose labels include `labels`. */
  replicaSets(namespace: string, labels: Record<string, string>): KubernetesObject[];
  /** An object the operator just wrote, as the API server answered. */
  observe(kind: string, obj: KubernetesObject): void;
  /** Whether the API server serves an owned kind (false: an optional kind whose CRDs are missing). */
  served(kind: string, namespace: string): boolean;
}

export interface CacheKinds {
  /** The FnolModel kind. */
  model: ResourceKind & { kind: string };
  /** Owned kinds, read by namespace and name. */
  owned: Array<ResourceKind & { kind: string; optional?: boolean }>;
  /** ReplicaSets, read by label (status computation). */
  replicaSet: ResourceKind & { kind: string };
  /** The label replicaSets() is always asked for: indexed, so a read costs the same at any number of models. */
  replicaSetIndexLabel?: string;
}

/**
 * The operator's caches: every FnolModel of the watched namespaces, and the
 * owned kinds and ReplicaSets that carry `ownedSelector` (the operator's
 * managed-by label). `namespaces` empty: all namespaces, one cluster-wide
 * informer per kind, still label-filtered.
 */
export class Caches implements ReadCache {
  readonly models: Informer[];
  readonly owned = new Map<string, Informer[]>();
  readonly replicaSetInformers: Informer[];

  constructor(
    client: KubeClient,
    kinds: CacheKinds,
    namespaces: string[],
    ownedSelector: string,
    log: Logger,
    watchTimeoutSeconds?: number,
  ) {
    const scopes: Array<string | undefined> = namespaces.length > 0 ? namespaces : [undefined];
    const make = (
      kind: ResourceKind & { kind: string; optional?: boolean },
      labelSelector?: string,
      indexLabel?: string,
    ) =>
      scopes.map(
        (namespace) =>
          new Informer(client, {
            kind,
            namespace,
            labelSelector,
            log,
            ...(indexLabel !== undefined ? { indexLabel } : {}),
            ...(kind.optional ? { optional: true } : {}),
            ...(watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds } : {}),
          }),
      );
    this.models = make(kinds.model);
    for (const k of kinds.owned) this.owned.set(k.kind, make(k, ownedSelector));
    this.replicaSetInformers = make(kinds.replicaSet, ownedSelector, kinds.replicaSetIndexLabel);
  }

  all(): Informer[] {
    return [...this.models, ...[...this.owned.values()].flat(), ...this.replicaSetInformers];
  }

  async start(): Promise<void> {
    await Promise.all(this.all().map((i) => i.start()));
  }

  stop(): void {
    for (const i of this.all()) i.stop();
  }

  get synced(): boolean {
    return this.all().every((i) => i.synced);
  }

  /** Objects in the caches, by kind (memory is bounded by these). */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const i of this.all()) out[i.kind] = (out[i.kind] ?? 0) + i.size;
    return out;
  }

  modelKeys(): string[] {
    return this.models.flatMap((i) => i.keys());
  }

  private scoped(informers: Informer[], namespace: string): Informer | undefined {
    return informers.find((i) => i.opts.namespace === undefined || i.opts.namespace === namespace);
  }

  model<M extends KubernetesObject>(namespace: string, name: string): M | undefined {
    return this.scoped(this.models, namespace)?.get(namespace, name) as M | undefined;
  }

  child(kind: string, namespace: string, name: string): KubernetesObject | undefined {
    return this.scoped(this.owned.get(kind) ?? [], namespace)?.get(namespace, name);
  }

  served(kind: string, namespace: string): boolean {
    return this.scoped(this.owned.get(kind) ?? [], namespace)?.available ?? false;
  }

  replicaSets(namespace: string, labels: Record<string, string>): KubernetesObject[] {
    return this.scoped(this.replicaSetInformers, namespace)?.list(namespace, labels) ?? [];
  }

  observe(kind: string, obj: KubernetesObject): void {
    const informers = kind === this.models[0]?.kind ? this.models : (this.owned.get(kind) ?? []);
    const ns = obj.metadata?.namespace;
    if (ns !== undefined) this.scoped(informers, ns)?.observe(obj);
  }
}
