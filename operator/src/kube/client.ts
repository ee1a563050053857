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

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const httpsOpts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(httpsOpts);
    const secure = this.server.protocol === 'https:';
    if (!this.agent) {
      this.agent = secure
        ? new https.Agent({
            keepAlive: true,
            maxSockets: 32,
            ca: httpsOpts.ca,
            cert: httpsOpts.cert,
            key: httpsOpts.key,
            rejectUnauthorized: httpsOpts.rejectUnauthorized,
            servername: httpsOpts.servername,
          })
        : new http.Agent({ keepAlive: true, maxSockets: 32 });
    }
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
    const verb = opts.contentType === 'application/apply-patch+yaml' ? 'APPLY' : method;
    const started = process.hrtime.bigint();
    return new Promise<T>((resolve, reject) => {
      const lib = secure ? https : http;
      const req = lib.request(url, { method, headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
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

  list<T>(
    path: string,
    labelSelector?: string,
  ): Promise<{ items: T[]; metadata?: { resourceVersion?: string } }> {
    return this.request('GET', path, { query: { labelSelector } });
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
