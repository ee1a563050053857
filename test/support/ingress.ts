/**
 * The local ingress controller for tests (cluster/ingress/, docs/local-ingress.md):
 * Traefik on this host, serving the cluster's Ingresses of class
 * FNOL_INGRESS_CLASS (nginx) on 127.0.0.1:FNOL_INGRESS_PORT (18081), and the
 * HTTPRoutes attached to Gateway fnol-ingress/fnol on 127.0.0.1:FNOL_GATEWAY_PORT (18083).
 *
 *   const ingress = await useIngress();   // starts it (building on a cold cache) unless running
 *   ...
 *   await ingress.release();              // stops it if this call started it
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runScript } from './scripts';

const ROOT = path.resolve(__dirname, '..', '..');

export const INGRESS_PORT = Number(process.env.FNOL_INGRESS_PORT ?? 18081);
export const INGRESS_CLASS = process.env.FNOL_INGRESS_CLASS ?? 'nginx';
/** The Gateway cluster/ingress/up.sh creates: its HTTP listener's port, name, namespace and class. */
export const GATEWAY_PORT = Number(process.env.FNOL_GATEWAY_PORT ?? 18083);
export const GATEWAY = { name: 'fnol', namespace: 'fnol-ingress' } as const;
export const GATEWAY_CLASS = process.env.FNOL_GATEWAY_CLASS ?? 'traefik';
/** A cold start builds Traefik from source (about 2,500 packages on two cores). */
export const INGRESS_BUILD_TIMEOUT_MS = 40 * 60 * 1000;

/** Runs cluster/ingress/<script>; rejects naming the script and where to look. */
export function runIngressScript(script: string, args: string[] = []): Promise<void> {
  return runScript(`cluster/ingress/${script}`, args, 'its output above and .cluster/logs/traefik.log');
}

/** The pid of the controller process recorded by cluster/ingress/up.sh, if it is alive (whatever its ports). */
export function ingressControllerPid(): number | undefined {
  const dir = process.env.FNOL_CLUSTER_DIR ?? path.join(ROOT, '.cluster');
  try {
    const pid = Number(readFileSync(path.join(dir, 'pids', 'traefik.pid'), 'utf8').split(' ')[0]);
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

export interface IngressHandle {
  /** True when useIngress started the controller (and release stops it). */
  startedHere: boolean;
  release(): Promise<void>;
}

/**
 * Makes sure the controller runs (cluster/ingress/up.sh is idempotent and
 * restarts a controller running on other FNOL_INGRESS_* settings). A controller
 * that was already running is left running by release(), as is any controller
 * when FNOL_CLUSTER_KEEP=1.
 */
export async function useIngress(): Promise<IngressHandle> {
  const wasRunning = ingressControllerPid() !== undefined;
  await runIngressScript('up.sh');
  const startedHere = !wasRunning && process.env.FNOL_CLUSTER_KEEP !== '1';
  return {
    startedHere,
    release: async () => {
      if (startedHere) await runIngressScript('down.sh');
    },
  };
}
