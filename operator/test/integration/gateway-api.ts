/**
 * The Gateway API's HTTPRoute CRD for the integration suites: the standard
 * channel file of sigs.k8s.io/gateway-api at the version the Ingress
 * controller's build pins (cluster/ingress/build/go.mod), from the Go module
 * cache, or fetched into it with `go mod download` (the Go module proxy).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../../test/support/repo';
import type { KubeClient } from '../../src/kube/client';

export const HTTPROUTE_CRD = 'httproutes.gateway.networking.k8s.io';
const MODULE = 'sigs.k8s.io/gateway-api';

/** The gateway-api version cluster/ingress/build/go.mod pins, e.g. v1.4.0. */
export function pinnedGatewayApiVersion(): string | undefined {
  const goMod = readFileSync(path.join(repoRoot, 'cluster/ingress/build/go.mod'), 'utf8');
  return /^\s*sigs\.k8s\.io\/gateway-api (v[0-9][^\s]*)/m.exec(goMod)?.[1];
}

/**
 * The path of the standard HTTPRoute CRD file, or an explanation of why there
 * is none (no go, no pinned version, the proxy unreachable).
 */
export function httpRouteCrdFile(): { file: string } | { missing: string } {
  const version = pinnedGatewayApiVersion();
  if (!version) return { missing: `cluster/ingress/build/go.mod pins no ${MODULE}` };
  const rel = 'config/crd/standard/gateway.networking.k8s.io_httproutes.yaml';
  try {
    const cache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
    const cached = path.join(cache, `${MODULE}@${version}`, rel);
    if (existsSync(cached)) return { file: cached };
    const out = execFileSync('go', ['mod', 'download', '-json', `${MODULE}@${version}`], {
      encoding: 'utf8',
      cwd: path.join(repoRoot, 'cluster/ingress/build'),
    });
    const dir = (JSON.parse(out) as { Dir?: string }).Dir;
    if (dir && existsSync(path.join(dir, rel))) return { file: path.join(dir, rel) };
    return { missing: `${MODULE}@${version} has no ${rel}` };
  } catch (err) {
    return {
      missing: `could not get ${MODULE}@${version} from the Go module cache or proxy: ${(err as Error).message}`,
    };
  }
}

/** Whether the API server has the HTTPRoute CRD. */
export async function hasHttpRouteCrd(client: KubeClient): Promise<boolean> {
  return !!(await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${HTTPROUTE_CRD}`));
}
