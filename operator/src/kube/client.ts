/**
 * A small Kubernetes REST client on node's https module: the verbs the operator
 * needs (get, list, create, replace, server-side apply, merge patch, delete),
 * errors that carry the API server's status and message, and a hook that counts
 * requests for /metrics. Authentication comes from @kubernetes/client-node's
 * KubeConfig (kubeconfig file or in-cluster service account token).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig, V1ObjectMeta } from '@kubernetes/client-node';

export class KubeError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeError && err.statusCode === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeError && err.statusCode === 409;
}

export type RequestHook = (verb: string, code: number, seconds: number, resource: string) => void;

/** The resource a request path addresses ("deployments", "fnolmodels/status"), for metrics. */
export function resourceOf(path: string): string {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  // /api/v1/... or /apis/group/version/...
  let i = parts[0] === 'api' ? 2 : 3;
  if (parts[i] === 'namespaces' && parts.length > i + 2) i += 2;
  const resource = parts[i] ?? 'unknown';
  const sub = parts[i + 2];
  return sub ? `${resource}/${sub}` : resource;
}

interface RequestOptions {
  /** Return the body as text instead of parsing JSON (e.g. /metrics). */
  text?: boolean;
  body?: unknown;
  contentType?: string;
  /** Accept header; JSON by default. */
  accept?: string;
  /** The verb recorded in the metrics; the HTTP method (APPLY for an apply) by default. */
  verb?: string;
  query?: Record<string, string | number | boolean | undefined>;
}

/** Asks the API server for an object's metadata only (PartialObjectMetadata). */
const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

export class KubeClient {
  private agent: http.Agent | undefined;
  private readonly server: URL;

  constructor(
    private readonly kc: KubeConfig,
    private readonly onRequest: RequestHook = () => {},
    private readonly timeoutMs = 30_000,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster; set KUBECONFIG or run in a pod');
    this.server = new URL(cluster.server);
  }

  private agentFor(httpsOpts: https.RequestOptions, secure: boolean): http.Agent {
    if (!this.agent) {
      this.agent = secure
        ? new https.Agent({
            keepAlive: true,
            maxSockets: 64,
            ca: httpsOpts.ca,
            cert: httpsOpts.cert,
            key: httpsOpts.key,
            rejectUnauthorized: httpsOpts.rejectUnauthorized,
            servername: httpsOpts.servername,
          })
        : new http.Agent({ keepAlive: true, maxSockets: 64 });
    }
    return this.agent;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const httpsOpts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(httpsOpts);
    const secure = this.server.protocol === 'https:';
    const agent = this.agentFor(httpsOpts, secure);
    const url = new URL(this.server.toString().replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      Accept: opts.accept ?? 'application/json',
      ...(httpsOpts.headers as Record<string, string>),
    };
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    if (payload) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    if (httpsOpts.auth && !headers.Authorization) {
      headers.Authorization = `Basic ${Buffer.from(httpsOpts.auth).toString('base64')}`;
    }
    const verb = opts.verb ?? (opts.contentType === 'application/apply-patch+yaml' ? 'APPLY' : method);
    const started = process.hrtime.bigint();
    return new Promise<T>((resolve, reject) => {
      const lib = secure ? https : http;
      const req = lib.request(url, { method, headers, agent, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          this.onRequest(verb, code, Number(process.hrtime.bigint() - started) / 1e9, resourceOf(path));
          const text = Buffer.concat(chunks).toString('utf8');
          if (opts.text && code >= 200 && code < 300) {
            resolve(text as T);
            return;
          }
          let parsed: unknown = undefined;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          if (code >= 200 && code < 300) {
            resolve(parsed as T);
            return;
          }
          const st = (parsed ?? {}) as { reason?: string; message?: string };
          reject(
            new KubeError(
              code,
              st.reason ?? 'Unknown',
              `${method} ${path}: HTTP ${code}: ${st.message ?? text.slice(0, 300)}`,
            ),
          );
        });
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${this.timeoutMs} ms`)),
      );
      req.on('error', (err) => {
        this.onRequest(verb, 0, Number(process.hrtime.bigint() - started) / 1e9, resourceOf(path));
        reject(err);
      });
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** GET; undefined when the object does not exist. */
  async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * GET of the object's metadata only (name, labels, annotations...): e.g. a
   * Secret's labels without its data. undefined when the object does not exist.
   */
  async getMetadata(path: string): Promise<V1ObjectMeta | undefined> {
    try {
      return (await this.request<{ metadata?: V1ObjectMeta }>('GET', path, { accept: METADATA_ONLY }))
        .metadata;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A collection read; counted as verb LIST in the metrics, apart from single-object GETs. */
  list<T>(
    path: string,
    labelSelector?: string,
    query: Record<string, string | number | boolean | undefined> = {},
  ): Promise<{ items: T[]; metadata?: { resourceVersion?: string } }> {
    return this.request('GET', path, { query: { labelSelector, ...query }, verb: 'LIST' });
  }

  /**
   * A watch: one long GET whose body is a stream of JSON lines ({type, object}).
   * onEvent is called for each line; the promise resolves when the server ends
   * the stream (its timeout) and rejects on an error (a 410 Gone answer is a
   * KubeError with statusCode 410). abort() ends it early; it then resolves.
   */
  watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (event: { type: string; object: unknown }) => void,
  ): { done: Promise<void>; abort: () => void } {
    let req: http.ClientRequest | undefined;
    let aborted = false;
    const done = (async () => {
      const httpsOpts: https.RequestOptions = {};
      await this.kc.applyToHTTPSOptions(httpsOpts);
      const secure = this.server.protocol === 'https:';
      const agent = this.agentFor(httpsOpts, secure);
      const url = new URL(this.server.toString().replace(/\/$/, '') + path);
      for (const [k, v] of Object.entries({ ...query, watch: true }))
        if (v !== undefined) url.searchParams.set(k, String(v));
      const headers: Record<string, string> = {
        Accept: 'application/json',
        ...(httpsOpts.headers as Record<string, string>),
      };
      if (httpsOpts.auth && !headers.Authorization) {
        headers.Authorization = `Basic ${Buffer.from(httpsOpts.auth).toString('base64')}`;
      }
      const started = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        if (aborted) return resolve();
        const lib = secure ? https : http;
        req = lib.request(url, { method: 'GET', headers, agent }, (res) => {
          const code = res.statusCode ?? 0;
          this.onRequest('WATCH', code, Number(process.hrtime.bigint() - started) / 1e9, resourceOf(path));
          let buffered = '';
          res.setEncoding('utf8');
          if (code < 200 || code >= 300) {
            res.on('data', (c: string) => (buffered += c.slice(0, 1000)));
            res.on('end', () => {
              let st: { reason?: string; message?: string } = {};
              try {
                st = JSON.parse(buffered) as typeof st;
              } catch {
                st = {};
              }
              reject(
                new KubeError(
                  code,
                  st.reason ?? 'Unknown',
                  `WATCH ${path}: HTTP ${code}: ${st.message ?? ''}`,
                ),
              );
            });
            return;
          }
          res.on('data', (c: string) => {
            buffered += c;
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl).trim();
              buffered = buffered.slice(nl + 1);
              if (!line) continue;
              try {
                onEvent(JSON.parse(line) as { type: string; object: unknown });
              } catch (err) {
                req?.destroy(err as Error);
                return;
              }
            }
          });
          res.on('error', (err) => (aborted ? resolve() : reject(err)));
          res.on('close', () => resolve());
          res.on('end', () => resolve());
        });
        // A connection that died silently: nothing (not even a bookmark) for the
        // watch's own timeout plus a minute ends it, and the caller watches again.
        const idleMs = (Number(query.timeoutSeconds ?? 300) + 60) * 1000;
        req.setTimeout(idleMs, () => req?.destroy(new Error(`WATCH ${path}: no data for ${idleMs} ms`)));
        req.on('error', (err) => (aborted ? resolve() : reject(err)));
        req.end();
      });
    })();
    return {
      done,
      abort: () => {
        aborted = true;
        req?.destroy();
      },
    };
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request('POST', path, { body });
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request('PUT', path, { body });
  }

  /** Server-side apply under the field manager; force takes fields over from other managers. */
  apply<T>(path: string, body: unknown, fieldManager: string): Promise<T> {
    return this.request('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: true },
    });
  }

  mergePatch<T>(path: string, body: unknown, fieldManager?: string): Promise<T> {
    return this.request('PATCH', path, {
      body,
      contentType: 'application/merge-patch+json',
      query: { fieldManager },
    });
  }

  /** DELETE; false when it was already gone. uid guards against deleting a newer object of the same name. */
  async delete(path: string, uid?: string): Promise<boolean> {
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Background',
      ...(uid ? { preconditions: { uid } } : {}),
    };
    try {
      await this.request('DELETE', path, { body });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  close(): void {
    this.agent?.destroy();
  }
}
