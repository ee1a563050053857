// Thin client for FnolModel objects: read, and server-side apply with the
// fnolctl field manager. Everything else is in rollout.ts (pure).
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type FnolModel } from '@fnol/api';
import { FIELD_MANAGER } from './rollout';

export interface FnolModelApi {
  get(namespace: string, name: string): Promise<FnolModel>;
  apply(namespace: string, name: string, body: Record<string, unknown>): Promise<FnolModel>;
  /**
   * JSON merge patch (field manager fnolctl): changes exactly the fields given,
   * removes those set to null. With metadata.resourceVersion in the body it
   * fails with 409 (KubeApiError.statusCode) if the object changed since.
   */
  patch(namespace: string, name: string, body: Record<string, unknown>): Promise<FnolModel>;
}

/** An API error with the HTTP status kept, so callers can tell a conflict from a failure. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

/** Loads the kubeconfig from KUBECONFIG (or ~/.kube/config) with a clear error. */
export function loadKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (err) {
    throw new Error(
      `cannot load the kubeconfig (${(err as Error).message}); set KUBECONFIG to a kubeconfig file`,
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(
      'no current cluster in the kubeconfig; set KUBECONFIG to a kubeconfig file with a current-context',
    );
  }
  return kc;
}

export function kubeError(err: unknown, what: string): KubeApiError {
  const e = err as { statusCode?: number; body?: { message?: string; reason?: string }; message?: string };
  return new KubeApiError(describeKubeError(e, what), e.statusCode);
}

function describeKubeError(
  e: { statusCode?: number; body?: { message?: string; reason?: string }; message?: string },
  what: string,
): string {
  if (e.statusCode === 404) {
    return `${what}: not found; check the namespace and name (kubectl get fnolmodels -A)`;
  }
  if (e.statusCode === 403) {
    return `${what}: forbidden (${e.body?.message ?? ''}); the identity in KUBECONFIG needs get and patch on fnolmodels`;
  }
  if (e.statusCode === 409) {
    return (
      `${what}: the FnolModel changed while fnolctl was working on it (${e.body?.message ?? 'conflict'}); ` +
      'run the command again: it re-reads the object and decides again'
    );
  }
  if (e.statusCode === 422) {
    return `${what}: rejected by the API server: ${e.body?.message ?? e.message ?? ''}`;
  }
  if (e.statusCode) return `${what}: HTTP ${e.statusCode} ${e.body?.message ?? e.message ?? ''}`;
  return `${what}: ${e.message ?? 'no answer'}; is the cluster in KUBECONFIG reachable?`;
}

/** Server-side apply (owning the fields fnolctl sets) or a JSON merge patch. */
const APPLY = { contentType: 'application/apply-patch+yaml', force: true } as const;
const MERGE = { contentType: 'application/merge-patch+json', force: undefined } as const;

export function fnolModelApi(kc: k8s.KubeConfig): FnolModelApi {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const patch = async (
    namespace: string,
    name: string,
    body: object,
    how: typeof APPLY | typeof MERGE,
    what: string,
  ): Promise<FnolModel> => {
    try {
      const res = await api.patchNamespacedCustomObject(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        body,
        undefined,
        FIELD_MANAGER,
        how.force,
        { headers: { 'Content-Type': how.contentType } },
      );
      return res.body as FnolModel;
    } catch (err) {
      throw kubeError(err, what);
    }
  };
  return {
    async get(namespace, name) {
      try {
        const res = await api.getNamespacedCustomObject(GROUP, VERSION, namespace, PLURAL, name);
        return res.body as FnolModel;
      } catch (err) {
        throw kubeError(err, `reading FnolModel ${namespace}/${name}`);
      }
    },
    apply: (namespace, name, body) =>
      patch(namespace, name, body, APPLY, `applying spec.model to FnolModel ${namespace}/${name}`),
    patch: (namespace, name, body) =>
      patch(namespace, name, body, MERGE, `patching FnolModel ${namespace}/${name}`),
  };
}
