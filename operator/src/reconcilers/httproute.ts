/**
 * Gateway API HTTPRoute <name> for spec.gateway (none without it): the same
 * public paths as the Ingress (PUBLIC_PATHS under spec.gateway.path), attached
 * to spec.gateway.parentRef, sent to the stable Service and, with spec.canary,
 * to the candidate's Service by weight. The canary weight is what the
 * reconciler passes: spec.canary.trafficPercent once the candidate has ready
 * pods, else 0, and then the candidate's backend is left out.
 */
import { canaryName, type FnolModel } from '@fnol/api';
import { ownedMetadata, SERVICE_PORT } from './common';
import { PUBLIC_PATHS } from './ingress';

export const HTTPROUTE_API_VERSION = 'gateway.networking.k8s.io/v1';

/** The parts of gateway.networking.k8s.io/v1 HTTPRoute the operator writes. */
export interface HTTPRoute {
  apiVersion: typeof HTTPROUTE_API_VERSION;
  kind: 'HTTPRoute';
  metadata: ReturnType<typeof ownedMetadata>;
  spec: {
    parentRefs: Array<{
      group: string;
      kind: string;
      name: string;
      namespace?: string;
      sectionName?: string;
    }>;
    hostnames?: string[];
    rules: Array<{
      matches: Array<{ path: { type: 'Exact' | 'PathPrefix'; value: string } }>;
      backendRefs: Array<{ name: string; port: number; weight: number }>;
    }>;
  };
}

/** The share of live requests the route sends to the candidate: 0 until it has ready pods. */
export function canaryWeight(fm: FnolModel, candidateReadyPods: number): number {
  const t = fm.spec.canary?.trafficPercent ?? 0;
  return candidateReadyPods > 0 ? t : 0;
}

export function desiredHttpRoute(fm: FnolModel, weight: number): HTTPRoute | undefined {
  const gw = fm.spec.gateway;
  if (!gw) return undefined;
  const t = fm.spec.canary ? Math.min(100, Math.max(0, Math.round(weight))) : 0;
  const prefix = (gw.path ?? '/').replace(/\/+$/, '');
  const backendRefs = [{ name: fm.metadata.name, port: SERVICE_PORT, weight: 100 - t }];
  if (t > 0) backendRefs.push({ name: canaryName(fm.metadata.name), port: SERVICE_PORT, weight: t });
  const { name, namespace, sectionName } = gw.parentRef;
  return {
    apiVersion: HTTPROUTE_API_VERSION,
    kind: 'HTTPRoute',
    metadata: ownedMetadata(fm),
    spec: {
      parentRefs: [
        {
          group: 'gateway.networking.k8s.io',
          kind: 'Gateway',
          name,
          ...(namespace ? { namespace } : {}),
          ...(sectionName ? { sectionName } : {}),
        },
      ],
      ...(gw.hostnames?.length ? { hostnames: gw.hostnames } : {}),
      rules: [
        {
          matches: PUBLIC_PATHS.map(({ path, pathType }) => ({
            path: { type: pathType === 'Exact' ? 'Exact' : 'PathPrefix', value: `${prefix}${path}` },
          })),
          backendRefs,
        },
      ],
    },
  };
}

/** The candidate's weight in a live HTTPRoute (0 when it has no backend for it). */
export function appliedCanaryWeight(route: unknown, fm: FnolModel): number {
  const rules = (route as HTTPRoute | undefined)?.spec?.rules ?? [];
  const ref = rules[0]?.backendRefs?.find((b) => b.name === canaryName(fm.metadata.name));
  const w = ref?.weight;
  return typeof w === 'number' && Number.isFinite(w) ? w : 0;
}

/** How long a route change may go unreported by its controller before it is taken as applied. */
export const ROUTE_ACCEPT_GRACE_MS = 15_000;

interface RouteStatus {
  metadata?: { generation?: number };
  status?: { parents?: Array<{ conditions?: Array<{ observedGeneration?: number }> }> };
}

/**
 * Whether the gateway may still send requests to the candidate's Service, so
 * that deleting the Service or its pods now would fail them (the Gateway API
 * answers 500 for a backend that does not resolve): the live route names the
 * candidate, or its latest generation has not been reported by the gateway's
 * controller yet (status.parents[].conditions[].observedGeneration). A
 * controller that reports nothing gets ROUTE_ACCEPT_GRACE_MS after the
 * operator's last write of the route (`writtenAt`, ms; undefined when this
 * process has not written it).
 */
export function routeMayReachCandidate(
  route: unknown,
  fm: FnolModel,
  writtenAt: number | undefined,
  now: Date,
): boolean {
  if (route === undefined) return false;
  const rules = (route as HTTPRoute).spec?.rules ?? [];
  const candidate = canaryName(fm.metadata.name);
  if (rules.some((r) => r.backendRefs?.some((b) => b.name === candidate))) return true;
  const r = route as RouteStatus;
  const generation = r.metadata?.generation ?? 0;
  const reported = (r.status?.parents ?? []).some((p) =>
    (p.conditions ?? []).some((c) => (c.observedGeneration ?? -1) >= generation),
  );
  if (reported) return false;
  return writtenAt !== undefined && now.getTime() - writtenAt < ROUTE_ACCEPT_GRACE_MS;
}
