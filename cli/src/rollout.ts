// Pure parts of fnolctl: what to apply and how to read a FnolModel's rollout.
// No I/O here; cli/test/unit exercises these without a cluster.

export const GROUP = 'serving.fnol.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'fnolmodels';
export const KIND = 'FnolModel';
export const FIELD_MANAGER = 'fnolctl';
/** Annotation holding the spec.model that a promotion replaced (what rollback restores). */
export const PREVIOUS_MODEL_ANNOTATION = 'serving.fnol.io/previous-model';

export interface ModelSpec {
  version: string;
  uri: string;
  sha256: string;
  credentialsSecretRef?: { name: string; key?: string };
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

export interface FnolModelObject {
  metadata: { name: string; namespace: string; generation?: number; annotations?: Record<string, string> };
  spec: { model: ModelSpec; [k: string]: unknown };
  status?: {
    observedGeneration?: number;
    phase?: string;
    activeVersion?: string;
    readyReplicas?: number;
    url?: string;
    conditions?: Condition[];
  };
}

const VERSION_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const SHA_RE = /^[a-f0-9]{64}$/;

/** Checks a model spec the way the CRD does, with messages naming the field. */
export function validateModelSpec(m: Partial<ModelSpec>, source: string): ModelSpec {
  const problems: string[] = [];
  if (typeof m.version !== 'string' || !VERSION_RE.test(m.version) || m.version.length > 63) {
    problems.push(`version ${JSON.stringify(m.version)} must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  if (typeof m.uri !== 'string' || !/^(https?:\/\/[^/?#@]+\/.+|file:\/\/\/.+)$/.test(m.uri)) {
    problems.push(`uri ${JSON.stringify(m.uri)} must be https://HOST/PATH, http://HOST/PATH or file:///PATH`);
  } else if (/[?&](sig|se|sv|sp)=/.test(m.uri)) {
    problems.push('uri must not carry a SAS token; the scorer reads it from the credentials Secret');
  }
  if (typeof m.sha256 !== 'string' || !SHA_RE.test(m.sha256)) {
    problems.push(`sha256 ${JSON.stringify(m.sha256)} must be 64 lower-case hex characters`);
  }
  if (problems.length > 0) throw new Error(`invalid model from ${source}: ${problems.join('; ')}`);
  const spec: ModelSpec = { version: m.version!, uri: m.uri!, sha256: m.sha256! };
  if (m.credentialsSecretRef) spec.credentialsSecretRef = m.credentialsSecretRef;
  return spec;
}

/** The model from a publish result (npm run model:publish -- --json, or publish.json). */
export function modelFromPublishResult(json: unknown, source: string): ModelSpec {
  if (typeof json !== 'object' || json === null) throw new Error(`${source} is not a JSON object`);
  const j = json as Record<string, unknown>;
  return validateModelSpec(
    { version: j.version as string, uri: j.uri as string, sha256: j.sha256 as string },
    source,
  );
}

/**
 * The server-side apply body: only spec.model and the previous-model annotation,
 * so fnolctl owns exactly those fields and leaves replicas, ingress, ... alone.
 */
export function applyBody(
  name: string,
  namespace: string,
  model: ModelSpec,
  previous: ModelSpec | undefined,
): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name, namespace };
  if (previous) metadata.annotations = { [PREVIOUS_MODEL_ANNOTATION]: JSON.stringify(previous) };
  return { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata, spec: { model } };
}

export function previousModel(fm: FnolModelObject): ModelSpec | undefined {
  const raw = fm.metadata.annotations?.[PREVIOUS_MODEL_ANNOTATION];
  if (!raw) return undefined;
  try {
    return validateModelSpec(
      JSON.parse(raw) as Partial<ModelSpec>,
      `annotation ${PREVIOUS_MODEL_ANNOTATION}`,
    );
  } catch {
    return undefined;
  }
}

export function sameModel(a: ModelSpec, b: ModelSpec): boolean {
  return (
    a.version === b.version &&
    a.uri === b.uri &&
    a.sha256 === b.sha256 &&
    JSON.stringify(a.credentialsSecretRef ?? null) === JSON.stringify(b.credentialsSecretRef ?? null)
  );
}

export type RolloutState =
  | { state: 'waiting'; summary: string }
  | { state: 'ready'; summary: string }
  | { state: 'degraded'; summary: string };

/** Where a rollout to `version` stands, given the FnolModel written at `generation`. */
export function rolloutState(fm: FnolModelObject, generation: number, version: string): RolloutState {
  const s = fm.status ?? {};
  const observed = s.observedGeneration ?? 0;
  const phase = s.phase ?? 'Pending';
  const cond = (type: string): Condition | undefined => s.conditions?.find((c) => c.type === type);
  const detail = (c: Condition | undefined): string => (c ? ` (${c.reason ?? ''}: ${c.message ?? ''})` : '');
  const base = `phase ${phase}, active ${s.activeVersion ?? '-'}, ready replicas ${s.readyReplicas ?? 0}`;
  if (observed < generation) {
    return {
      state: 'waiting',
      summary: `operator has not yet observed generation ${generation} (observed ${observed}); ${base}`,
    };
  }
  if (phase === 'Degraded') {
    return { state: 'degraded', summary: `${base}${detail(cond('Degraded') ?? cond('Ready'))}` };
  }
  if (phase === 'Ready' && s.activeVersion === version) {
    return { state: 'ready', summary: base };
  }
  return { state: 'waiting', summary: `${base}${detail(cond('Progressing'))}` };
}

/** One line per FnolModel for `fnolctl status`. */
export function describeStatus(fm: FnolModelObject): string[] {
  const s = fm.status ?? {};
  const lines = [
    `FnolModel ${fm.metadata.namespace}/${fm.metadata.name}`,
    `  spec version     ${fm.spec.model.version}`,
    `  active version   ${s.activeVersion ?? '-'}`,
    `  phase            ${s.phase ?? 'Pending'} (generation ${fm.metadata.generation ?? '?'}, observed ${s.observedGeneration ?? '-'})`,
    `  ready replicas   ${s.readyReplicas ?? 0}`,
    `  url              ${s.url ?? '-'}`,
    `  model uri        ${fm.spec.model.uri}`,
    `  model sha256     ${fm.spec.model.sha256}`,
  ];
  const prev = previousModel(fm);
  if (prev) lines.push(`  rollback target  ${prev.version}`);
  for (const c of s.conditions ?? []) {
    lines.push(`  condition ${c.type}=${c.status} ${c.reason ?? ''}${c.message ? `: ${c.message}` : ''}`);
  }
  return lines;
}

/** The data science team's original smoke test: two positional rows, 1..37 and 37..1. */
export function exampleRequest(): { data: number[][] } {
  const up = Array.from({ length: 37 }, (_, i) => i + 1);
  return { data: [up, [...up].reverse()] };
}
