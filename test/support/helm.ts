/**
 * helm and the two renderings of the operator install, for the chart tests
 * (test/helm/): `helm()` runs the pinned helm (cluster/helm/build.sh builds it
 * into ~/.cache/fnol/helm on first use), `renderChart()` runs `helm template`
 * and `renderKustomize()` runs scripts/render-operator.sh (real kustomize);
 * both return the parsed objects.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CHART = path.join(ROOT, 'charts', 'fnol-operator');
/** The watched namespace of manifests/namespaced/role.yaml, the kustomize example. */
export const NAMESPACED_EXAMPLE = 'claims';
/** Upper bound for building helm on a cold cache (modules and packages), on a busy machine. */
export const HELM_BUILD_TIMEOUT_MS = 30 * 60 * 1000;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

let helmBinary: string | undefined;

/** The pinned helm binary, built on first use (cluster/helm/build.sh --print). */
export function helmPath(): string {
  if (helmBinary === undefined) {
    const r = spawnSync('bash', [path.join(ROOT, 'cluster/helm/build.sh'), '--print'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0)
      throw new Error(`cluster/helm/build.sh failed (exit ${r.status}); its output is above`);
    helmBinary = r.stdout.trim();
  }
  return helmBinary;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with `args` (no shared state: its own config, cache and data folders under the run's temp folder). */
export function helm(args: string[], options: { kubeconfig?: string; input?: string } = {}): RunResult {
  const home = path.join(os.tmpdir(), 'fnol-helm-home');
  const r = spawnSync(helmPath(), args, {
    encoding: 'utf8',
    input: options.input,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? home,
      HELM_CONFIG_HOME: path.join(home, 'config'),
      HELM_CACHE_HOME: path.join(home, 'cache'),
      HELM_DATA_HOME: path.join(home, 'data'),
      ...(options.kubeconfig ? { KUBECONFIG: options.kubeconfig } : {}),
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Parses a multi-document YAML stream into its objects (empty documents left out). */
export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`invalid YAML: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** `helm template` of the chart with `--set`-style values and a values object; throws with helm's message. */
export function renderChart(
  values: Record<string, unknown> = {},
  options: { namespace?: string; includeCrds?: boolean; release?: string } = {},
): K8sObject[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fnol-chart-values-'));
  try {
    const file = path.join(dir, 'values.json');
    writeFileSync(file, JSON.stringify(values));
    const args = [
      'template',
      options.release ?? 'fnol',
      CHART,
      '--namespace',
      options.namespace ?? 'fnol-system',
    ];
    args.push('-f', file);
    if (options.includeCrds) args.push('--include-crds');
    const r = helm(args);
    if (r.status !== 0) throw new Error(r.stderr.trim() || `helm template exited ${r.status}`);
    return parseObjects(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The kustomize install (manifests/) rendered by scripts/render-operator.sh
 * with the given images; `namespaced` adds the component manifests/namespaced/
 * through an overlay, as its README says (the Role stays in its namespace,
 * NAMESPACED_EXAMPLE).
 */
export function renderKustomize(operatorImage: string, scorerImage: string, namespaced = false): K8sObject[] {
  const args = [
    path.join(ROOT, 'scripts/render-operator.sh'),
    '--operator-image',
    operatorImage,
    '--scorer-image',
    scorerImage,
    '--out',
    '-',
  ];
  // kustomize takes relative paths only: the overlay lives inside the repository's build folder.
  mkdirSync(path.join(ROOT, 'build'), { recursive: true });
  const work = mkdtempSync(path.join(ROOT, 'build', 'fnol-kustomize-'));
  try {
    if (namespaced) {
      const rel = (p: string) => path.relative(work, path.join(ROOT, p));
      writeFileSync(
        path.join(work, 'kustomization.yaml'),
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          `resources: [${rel('manifests')}]`,
          `components: [${rel('manifests/namespaced')}]`,
          '',
        ].join('\n'),
      );
      args.push('--base', work);
    }
    const out = execFileSync('bash', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return parseObjects(out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** kind/namespace/name of an object, the key both renderings are compared by. */
export function objectKey(o: K8sObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}
