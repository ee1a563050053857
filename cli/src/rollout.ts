// Pure parts of fnolctl: what to apply and how to read a FnolModel's rollout.
// No I/O here; cli/test/unit exercises these without a cluster. The FnolModel
// API's names, types and the same-model rule come from lib/api.
import {
  API_VERSION,
  Annotations,
  KIND,
  sameModel,
  sameModelSpec,
  type Condition,
  type FnolModel,
  type FnolModelSpecModelInput,
} from '@fnol/api';

export const FIELD_MANAGER = 'fnolctl';

/**
 * applied: spec.model is `to` (the promotion may still be waiting or have failed
 * without restoring); restored: promote itself put `from` back; rolled-back: the
 * failure hook put `from` back (or removed the canary). A progressive promotion
 * starts as canary: spec.canary holds `to`, spec.model is still `from`;
 * canary-stopped: promote itself removed spec.canary after a breach or a timeout.
 * Only `applied` and `canary` may be rolled back.
 */
export type PromotionState = 'applied' | 'restored' | 'rolled-back' | 'canary' | 'canary-stopped';
const PROMOTION_STATES: readonly string[] = [
  'applied',
  'restored',
  'rolled-back',
  'canary',
  'canary-stopped',
];

export interface PromotionRecord {
  id: string;
  from: FnolModelSpecModelInput;
  to: FnolModelSpecModelInput;
  state: PromotionState;
}

const VERSION_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const SHA_RE = /^[a-f0-9]{64}$/;

/** Checks a model spec the way the CRD does, with messages naming the field. */
export function validateModelSpec(
  m: Partial<FnolModelSpecModelInput>,
  source: string,
): FnolModelSpecModelInput {
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
  const spec: FnolModelSpecModelInput = { version: m.version!, uri: m.uri!, sha256: m.sha256! };
  if (m.credentialsSecretRef) spec.credentialsSecretRef = m.credentialsSecretRef;
  return spec;
}

/** The model from a publish result (npm run model:publish -- --json, or publish.json). */
export function modelFromPublishResult(json: unknown, source: string): FnolModelSpecModelInput {
  if (typeof json !== 'object' || json === null) throw new Error(`${source} is not a JSON object`);
  const j = json as Record<string, unknown>;
  return validateModelSpec(
    { version: j.version as string, uri: j.uri as string, sha256: j.sha256 as string },
    source,
  );
}

const PROMOTION_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A promotion id names one pipeline run (e.g. build id, stage and attempt). */
export function validatePromotionId(id: string, flag: string): string {
  if (!PROMOTION_ID_RE.test(id)) {
    throw new Error(
      `${flag} ${JSON.stringify(id)} is not a promotion id: use 1-128 letters, digits, '.', '_' or '-', ` +
        'starting with a letter or digit (the pipeline passes $(Build.BuildId)-STAGE-$(System.StageAttempt))',
    );
  }
  return id;
}

export interface ApplyExtras {
  /** The promotion record to write with this spec.model. */
  record?: PromotionRecord;
  /** Precondition: the apply fails with 409 if the object changed since it was read. */
  resourceVersion?: string;
}

/**
 * The server-side apply body: only spec.model and fnolctl's annotations, so
 * fnolctl owns exactly those fields and leaves replicas, ingress, ... alone.
 */
export function applyBody(
  name: string,
  namespace: string,
  model: FnolModelSpecModelInput,
  previous: FnolModelSpecModelInput | undefined,
  extras: ApplyExtras = {},
): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name, namespace };
  if (extras.resourceVersion) metadata.resourceVersion = extras.resourceVersion;
  const annotations: Record<string, string> = {};
  if (previous) annotations[Annotations.previousModel] = JSON.stringify(previous);
  if (extras.record) annotations[Annotations.promotion] = JSON.stringify(extras.record);
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  return { apiVersion: API_VERSION, kind: KIND, metadata, spec: { model } };
}

/** The promotion record on the object, or undefined when absent or malformed. */
export function promotionRecord(fm: FnolModel): PromotionRecord | undefined {
  const raw = fm.metadata.annotations?.[Annotations.promotion];
  if (!raw) return undefined;
  try {
    const r = JSON.parse(raw) as Partial<Record<keyof PromotionRecord, unknown>>;
    if (typeof r.id !== 'string' || !PROMOTION_ID_RE.test(r.id)) return undefined;
    if (typeof r.state !== 'string' || !PROMOTION_STATES.includes(r.state)) return undefined;
    const source = `annotation ${Annotations.promotion}`;
    return {
      id: r.id,
      from: validateModelSpec(r.from as Partial<FnolModelSpecModelInput>, source),
      to: validateModelSpec(r.to as Partial<FnolModelSpecModelInput>, source),
      state: r.state as PromotionState,
    };
  } catch {
    return undefined;
  }
}

export type RollbackDecision =
  | { act: false; reason: string }
  /** Put `to` back into spec.model. */
  | { act: true; kind: 'model'; to: FnolModelSpecModelInput; reason: string }
  /** Remove spec.canary (it holds the run's candidate); spec.model was never changed. */
  | { act: true; kind: 'canary'; reason: string };

/**
 * Whether the pipeline run `id` should roll `fm` back, and to what: only when
 * that run's promotion is the last one recorded, is still applied (promote did
 * not restore it, nobody rolled it back) and spec.model is still what it applied.
 */
export function rollbackDecision(fm: FnolModel, id: string): RollbackDecision {
  const ref = `FnolModel ${fm.metadata.namespace}/${fm.metadata.name}`;
  const rec = promotionRecord(fm);
  if (!rec) {
    return {
      act: false,
      reason: `${ref} has no promotion record (annotation ${Annotations.promotion}): run ${id} promoted nothing, so there is nothing to roll back`,
    };
  }
  const what = `${rec.from.version} -> ${rec.to.version}`;
  if (rec.id !== id) {
    return {
      act: false,
      reason: `the last promotion of ${ref} (${what}) was made by ${rec.id}, not ${id}: this run promoted nothing, so there is nothing to roll back`,
    };
  }
  if (rec.state === 'restored') {
    return {
      act: false,
      reason: `${id} promoted ${what}, and promote already restored ${rec.from.version} when ${rec.to.version} failed: nothing more to roll back`,
    };
  }
  if (rec.state === 'rolled-back') {
    return {
      act: false,
      reason: `${id} promoted ${what}, and it was already rolled back to ${rec.from.version}: nothing more to do`,
    };
  }
  if (rec.state === 'canary-stopped') {
    return {
      act: false,
      reason: `${id} tried ${what} as a canary, and promote already stopped it and removed spec.canary: nothing more to roll back`,
    };
  }
  if (rec.state === 'canary') {
    const canary = fm.spec.canary;
    if (!canary || !sameModel(canary.model, rec.to)) {
      return {
        act: false,
        reason: `${id} started a canary of ${rec.to.version}, but spec.canary changed since (now ${canary ? canary.model.version : 'absent'}): not touching it`,
      };
    }
    return {
      act: true,
      kind: 'canary',
      reason: `${id} has a canary of ${rec.to.version} in progress (spec.model is still ${fm.spec.model.version})`,
    };
  }
  if (!sameModelSpec(fm.spec.model, rec.to)) {
    return {
      act: false,
      reason: `${id} promoted ${what}, but spec.model changed since (now ${fm.spec.model.version}): not touching it; roll back by hand if needed (fnolctl promote)`,
    };
  }
  return { act: true, kind: 'model', to: rec.from, reason: `${id} promoted ${what}` };
}

export function previousModel(fm: FnolModel): FnolModelSpecModelInput | undefined {
  const raw = fm.metadata.annotations?.[Annotations.previousModel];
  if (!raw) return undefined;
  try {
    return validateModelSpec(
      JSON.parse(raw) as Partial<FnolModelSpecModelInput>,
      `annotation ${Annotations.previousModel}`,
    );
  } catch {
    return undefined;
  }
}

export type RolloutState =
  | { state: 'waiting'; summary: string }
  | { state: 'ready'; summary: string }
  | { state: 'degraded'; summary: string };

/** Where a rollout to `version` stands, given the FnolModel written at `generation`. */
export function rolloutState(fm: FnolModel, generation: number, version: string): RolloutState {
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
export function describeStatus(fm: FnolModel): string[] {
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
  const rec = promotionRecord(fm);
  if (rec)
    lines.push(`  last promotion   ${rec.id}: ${rec.from.version} -> ${rec.to.version} (${rec.state})`);
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
