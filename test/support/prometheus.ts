/**
 * The local Prometheus's HTTP API (cluster/monitoring/, npm run monitoring:up),
 * as the monitoring and end-to-end suites read it.
 */
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
export const PROMETHEUS_PORT = Number(process.env.FNOL_PROMETHEUS_PORT ?? 19090);
const API = `http://127.0.0.1:${PROMETHEUS_PORT}`;

/** The file in which cluster/monitoring/up.sh records Prometheus's pid. */
export const PROMETHEUS_PID_FILE = path.join(
  process.env.FNOL_CLUSTER_DIR ?? path.join(ROOT, '.cluster'),
  'pids',
  'prometheus.pid',
);

/** One scrape target, as /api/v1/targets lists it. */
export interface Target {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: string;
  lastError: string;
  lastScrape: string;
}

/** GET of an API path; fails with Prometheus's own error when the call did not succeed. */
export async function prometheusApi<T>(p: string): Promise<T> {
  const res = await fetch(`${API}${p}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${p}: ${body.error ?? res.status}`);
  return body.data;
}

/** The active targets of one scrape job in one namespace. */
export async function activeTargets(job: string, namespace: string): Promise<Target[]> {
  const d = await prometheusApi<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
  return d.activeTargets.filter((t) => t.labels.job === job && t.labels.namespace === namespace);
}

/** The series an instant query returns, with their labels and values. */
export async function instantQuery(
  query: string,
): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const d = await prometheusApi<{
    result: Array<{ metric: Record<string, string>; value: [number, string] }>;
  }>(`/api/v1/query?query=${encodeURIComponent(query)}`);
  return d.result;
}
