// Pure parts of the progressive promote: the step plan, the analysis thresholds,
// the decision on status.canary.comparison, what to patch and how to show it.
// No I/O here; cli/test/unit exercises these without a cluster.
import {
  sameModel,
  type Condition,
  type FnolModel,
  type FnolModelSpecModelInput,
  type FnolModelStatusCanaryComparison,
} from '@fnol/api';
import { promotionRecord } from './rollout';

/** Thresholds checked against status.canary.comparison. Differences and shares are fractions (0.01 = 1 %). */
export interface AnalysisThresholds {
  /** Largest median relative difference allowed on any output. */
  maxMedianDiff: number;
  /** Largest 95th percentile relative difference allowed on any output. */
  maxP95Diff: number;
  /** Largest share of records over the scorer's difference threshold, on any output. */
  maxExceedingShare: number;
  /** Largest candidate error rate (errors / (compared + errors)). */
  maxErrorRate: number;
  /** Largest candidate p99 latency divided by the stable p99 latency. */
  maxLatencyRatio: number;
  /** Fewest compared requests (errors included) before a step can pass. */
  minRequests: number;
}

export const DEFAULT_THRESHOLDS: Readonly<AnalysisThresholds> = Object.freeze({
  maxMedianDiff: 0.001,
  maxP95Diff: 0.01,
  maxExceedingShare: 0.05,
  maxErrorRate: 0.01,
  maxLatencyRatio: 2,
  minRequests: 100,
});

type Key = keyof AnalysisThresholds;
const KEYS = Object.keys(DEFAULT_THRESHOLDS) as Key[];

/** What each key accepts, checked after the value parsed as a finite number. */
const RULES: Record<Key, { ok: (n: number) => boolean; what: string }> = {
  maxMedianDiff: { ok: (n) => n >= 0, what: 'a relative difference >= 0 (0.001 = 0.1 %)' },
  maxP95Diff: { ok: (n) => n >= 0, what: 'a relative difference >= 0 (0.01 = 1 %)' },
  maxExceedingShare: { ok: (n) => n >= 0 && n <= 1, what: 'a share between 0 and 1 (0.05 = 5 %)' },
  maxErrorRate: { ok: (n) => n >= 0 && n <= 1, what: 'a rate between 0 and 1 (0.01 = 1 %)' },
  maxLatencyRatio: { ok: (n) => n > 0, what: 'a ratio > 0 (2 = the candidate may be twice as slow)' },
  minRequests: { ok: (n) => Number.isInteger(n) && n >= 1, what: 'a whole number of requests >= 1' },
};

/**
 * Parses `--analysis 'maxP95Diff=0.02,minRequests=500'` over the defaults.
 * Unknown keys, repeated keys and values out of range are refused, all named at once.
 */
export function parseAnalysis(text: string | undefined): AnalysisThresholds {
  const out: AnalysisThresholds = { ...DEFAULT_THRESHOLDS };
  if (text === undefined) return out;
  const problems: string[] = [];
  const seen = new Set<string>();
  const items = text.split(',').map((s) => s.trim());
  if (items.every((s) => s === '')) {
    throw new Error(
      `--analysis is empty; give KEY=VALUE pairs separated by commas (keys: ${KEYS.join(', ')})`,
    );
  }
  for (const item of items) {
    if (item === '') {
      problems.push('an empty entry (two commas in a row or a trailing comma)');
      continue;
    }
    const eq = item.indexOf('=');
    if (eq < 0) {
      problems.push(`"${item}" is not KEY=VALUE`);
      continue;
    }
    const key = item.slice(0, eq).trim();
    const raw = item.slice(eq + 1).trim();
    if (!(KEYS as string[]).includes(key)) {
      problems.push(`unknown key "${key}" (known: ${KEYS.join(', ')})`);
      continue;
    }
    if (seen.has(key)) {
      problems.push(`${key} is given twice`);
      continue;
    }
    seen.add(key);
    const rule = RULES[key as Key];
    const n = raw === '' ? NaN : Number(raw);
    if (!Number.isFinite(n) || !rule.ok(n)) {
      problems.push(`${key}=${JSON.stringify(raw)} must be ${rule.what}`);
      continue;
    }
    out[key as Key] = n;
  }
  if (problems.length > 0) throw new Error(`invalid --analysis: ${problems.join('; ')}`);
  return out;
}

export function describeThresholds(t: AnalysisThresholds): string {
  return KEYS.map((k) => `${k}=${t[k]}`).join(',');
}

/** One step of a progressive promotion: what spec.canary says while it is held. */
export interface Step {
  /** "mirror 100%" or "canary 10%". */
  label: string;
  mirrorPercent: number;
  trafficPercent: number;
}

function percent(raw: string, flag: string): number {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isInteger(n) || n < 1 || n > 100) {
    throw new Error(`${flag} ${JSON.stringify(raw)} must be a whole percentage from 1 to 100`);
  }
  return n;
}

/**
 * The steps from --mirror and --canary: the mirror step (no live traffic), then
 * each canary share with mirroring kept on, so the comparison keeps counting.
 */
export function planSteps(mirror: string | undefined, canary: string | undefined): Step[] {
  if (mirror === undefined) {
    throw new Error(
      'a progressive promotion needs --mirror PERCENT: the analysis reads the comparison of mirrored requests ' +
        '(e.g. --mirror 100 --canary 10,50)',
    );
  }
  const m = percent(mirror, '--mirror');
  const steps: Step[] = [{ label: `mirror ${m}%`, mirrorPercent: m, trafficPercent: 0 }];
  if (canary !== undefined) {
    const shares = canary.split(',').map((s) => percent(s, '--canary'));
    for (let i = 1; i < shares.length; i++) {
      if (shares[i]! <= shares[i - 1]!) {
        throw new Error(`--canary ${JSON.stringify(canary)} must list increasing shares, e.g. 10,50`);
      }
    }
    for (const t of shares) steps.push({ label: `canary ${t}%`, mirrorPercent: m, trafficPercent: t });
  }
  return steps;
}

export interface Figure {
  /** What was measured, e.g. "p95 relative difference of ultimate_cost". */
  what: string;
  value: string;
  limit: string;
}

export type Verdict =
  { pass: true; figures: Figure[] } | { pass: false; failed: Figure[]; figures: Figure[] };

/**
 * Status text as one printable line: the status is written by another program
 * and shown in a terminal, so control characters (escape sequences) are
 * replaced and the length is bounded.
 */
export function printable(text: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

const pct = (v: number): string => `${v * 100 === 0 ? 0 : Number((v * 100).toPrecision(2))}%`;

/** A relative difference or share as a percentage with two significant digits; '-' when absent. */
export function formatPercent(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '-' : pct(v);
}

export function latencyRatio(c: FnolModelStatusCanaryComparison | undefined): number | undefined {
  const s = c?.stableLatencyP99Seconds;
  const k = c?.candidateLatencyP99Seconds;
  if (s === undefined || k === undefined) return undefined;
  if (s === 0) return k === 0 ? 1 : Infinity;
  return k / s;
}

/** Compared requests plus candidate errors: what the error rate is computed over. */
export function sampleSize(c: FnolModelStatusCanaryComparison | undefined): number {
  return (c?.requests ?? 0) + (c?.candidateErrors ?? 0);
}

/**
 * The threshold decision at the end of a step. A figure the operator did not
 * report counts as failed: a promotion passes on evidence, never on its absence.
 */
export function evaluate(c: FnolModelStatusCanaryComparison | undefined, t: AnalysisThresholds): Verdict {
  const figures: Figure[] = [];
  const failed: Figure[] = [];
  const check = (
    what: string,
    value: number | undefined,
    limit: number,
    show: (n: number) => string,
    atLeast = false,
  ) => {
    const f: Figure = {
      what,
      value: value === undefined ? 'not reported' : show(value),
      limit: `${atLeast ? '>=' : '<='} ${show(limit)}`,
    };
    figures.push(f);
    // A negative figure cannot be measured: the status is wrong, so it does not pass.
    if (value === undefined || !(value >= 0) || (atLeast ? value < limit : value > limit)) failed.push(f);
  };
  const count = (n: number) => String(n);
  check('mirrored requests', c ? sampleSize(c) : undefined, t.minRequests, count, true);
  check('candidate error rate', c?.candidateErrorRate, t.maxErrorRate, pct);
  const ratio = latencyRatio(c);
  check('candidate/stable p99 latency', ratio, t.maxLatencyRatio, (n) =>
    Number.isFinite(n) ? `x${Number(n.toPrecision(3))}` : 'x∞',
  );
  const outputs = c?.outputs ?? [];
  if (outputs.length === 0) {
    const f = { what: 'outputs compared', value: 'none reported', limit: '>= 1' };
    figures.push(f);
    failed.push(f);
  }
  for (const o of outputs) {
    const name = printable(o.name, 63);
    check(`median relative difference of ${name}`, o.medianRelativeDifference, t.maxMedianDiff, pct);
    check(`p95 relative difference of ${name}`, o.p95RelativeDifference, t.maxP95Diff, pct);
    check(`share over ${formatPercent(o.threshold)} of ${name}`, o.exceedingShare, t.maxExceedingShare, pct);
  }
  return failed.length > 0 ? { pass: false, failed, figures } : { pass: true, figures };
}

/**
 * A breach clear enough to stop before the step's hold ends: the candidate
 * already failed too many of enough requests (more requests cannot bring the
 * rate down fast enough to matter, and every one of them was a failed answer).
 */
export function earlyBreach(
  c: FnolModelStatusCanaryComparison | undefined,
  t: AnalysisThresholds,
): Figure | undefined {
  if (!c || sampleSize(c) < t.minRequests) return undefined;
  const rate = c.candidateErrorRate;
  if (rate !== undefined && rate > t.maxErrorRate) {
    return { what: 'candidate error rate', value: pct(rate), limit: `<= ${pct(t.maxErrorRate)}` };
  }
  return undefined;
}

export function formatFigures(figures: Figure[]): string[] {
  const w = Math.max(...figures.map((f) => f.what.length));
  return figures.map((f) => `  ${f.what.padEnd(w)}  ${f.value.padStart(12)}  (threshold ${f.limit})`);
}

/** The progress line printed while a step is held. */
export function progressLine(
  step: Step,
  elapsedMs: number,
  holdMs: number,
  c: FnolModelStatusCanaryComparison | undefined,
): string {
  const head = `  [${step.label}] ${Math.round(elapsedMs / 1000)}s/${Math.round(holdMs / 1000)}s`;
  if (!c) return `${head}  no comparison reported yet`;
  const outputs = c.outputs ?? [];
  const worst = (k: 'medianRelativeDifference' | 'p95RelativeDifference'): number | undefined =>
    outputs.reduce<number | undefined>(
      (m, o) => (o[k] === undefined ? m : Math.max(m ?? 0, o[k])),
      undefined,
    );
  const ratio = latencyRatio(c);
  return (
    `${head}  requests ${c.requests ?? 0}` +
    `  median diff ${formatPercent(worst('medianRelativeDifference'))}` +
    `  p95 diff ${formatPercent(worst('p95RelativeDifference'))}` +
    `  errors ${formatPercent(c.candidateErrorRate)}` +
    `  latency ${ratio === undefined ? '-' : Number.isFinite(ratio) ? `x${Number(ratio.toPrecision(3))}` : 'x∞'}`
  );
}

const cond = (fm: FnolModel, type: Condition['type']): Condition | undefined =>
  fm.status?.conditions?.find((c) => c.type === type);

export type CanaryState =
  | { state: 'waiting'; summary: string }
  | { state: 'ready'; summary: string }
  /** spec.canary no longer holds this candidate: someone else changed it. */
  | { state: 'lost'; summary: string };

/**
 * Whether the operator reports the candidate serving `step`: CanaryReady True
 * for this generation, status.canary.version the candidate and the step's
 * shares applied (status.canary.trafficPercent and mirrorPercent).
 */
export function canaryState(
  fm: FnolModel,
  generation: number,
  candidate: FnolModelSpecModelInput,
  step: Step,
): CanaryState {
  const spec = fm.spec.canary;
  if (!spec || !sameModel(spec.model, candidate)) {
    return {
      state: 'lost',
      summary: spec
        ? `spec.canary now holds ${spec.model.version}, not ${candidate.version}`
        : 'spec.canary was removed',
    };
  }
  const s = fm.status ?? {};
  const c = s.canary;
  const ready = cond(fm, 'CanaryReady');
  const base =
    `candidate ${printable(c?.version ?? '-', 63)}, ready replicas ${c?.readyReplicas ?? 0}, ` +
    `traffic ${c?.trafficPercent ?? 0}%, mirror ${c?.mirrorPercent ?? 0}%` +
    (ready
      ? `, CanaryReady=${ready.status}${ready.reason ? ` (${printable(ready.reason)}${ready.message ? `: ${printable(ready.message)}` : ''})` : ''}`
      : '');
  const observed = s.observedGeneration ?? 0;
  if (observed < generation) {
    return {
      state: 'waiting',
      summary: `operator has not yet observed generation ${generation} (observed ${observed}); ${base}`,
    };
  }
  const ok =
    ready?.status === 'True' &&
    (ready.observedGeneration === undefined || ready.observedGeneration >= generation) &&
    c?.version === candidate.version &&
    (c.trafficPercent ?? 0) === step.trafficPercent &&
    (c.mirrorPercent ?? 0) === step.mirrorPercent;
  return { state: ok ? 'ready' : 'waiting', summary: base };
}

/** spec.canary for a step, as a merge patch value. */
export function canarySpec(candidate: FnolModelSpecModelInput, step: Step): Record<string, unknown> {
  return { model: candidate, trafficPercent: step.trafficPercent, mirrorPercent: step.mirrorPercent };
}

/** spec.model as a merge patch value: every field set, credentials removed when the model names none. */
export function modelPatch(m: FnolModelSpecModelInput): Record<string, unknown> {
  return {
    version: m.version,
    uri: m.uri,
    sha256: m.sha256,
    credentialsSecretRef: m.credentialsSecretRef ?? null,
  };
}

export type StartDecision =
  | { action: 'start' }
  /** This run's canary is on the object already: continue from `step`, do not start another. */
  | { action: 'resume'; step: number; reason: string }
  /** This run already moved the candidate into spec.model: only wait for the rollout. */
  | { action: 'promoted'; reason: string }
  | { action: 'refuse'; reason: string; exitCode: number };

/**
 * What a progressive promote does with the object as it finds it. A re-run of
 * the same pipeline run (same promotion id) never starts a second canary: it
 * resumes the one on the object, or reports that the first run already ended.
 */
export function startDecision(
  fm: FnolModel,
  candidate: FnolModelSpecModelInput,
  steps: Step[],
  promotionId: string | undefined,
): StartDecision {
  const ref = `FnolModel ${fm.metadata.namespace}/${fm.metadata.name}`;
  const rec = promotionRecord(fm);
  const spec = fm.spec.canary;
  const mine = promotionId !== undefined && rec?.id === promotionId && sameModel(rec.to, candidate);
  if (mine && rec) {
    if (rec.state === 'canary' && spec && sameModel(spec.model, candidate)) {
      const i = steps.findIndex(
        (s) => s.trafficPercent === spec.trafficPercent && s.mirrorPercent === spec.mirrorPercent,
      );
      const at = i < 0 ? 0 : i;
      return {
        action: 'resume',
        step: at,
        reason: `promotion ${rec.id} already has ${candidate.version} in spec.canary (traffic ${spec.trafficPercent}%, mirror ${spec.mirrorPercent}%): resuming at ${steps[at]!.label}`,
      };
    }
    if (rec.state === 'applied' && sameModel(fm.spec.model, candidate)) {
      return {
        action: 'promoted',
        reason: `promotion ${rec.id} already moved ${candidate.version} into spec.model`,
      };
    }
    if (rec.state === 'canary-stopped' || rec.state === 'restored' || rec.state === 'rolled-back') {
      return {
        action: 'refuse',
        exitCode: 5,
        reason:
          `promotion ${rec.id} of ${candidate.version} already ended (${rec.state}); it is not started again. ` +
          'A new attempt needs a new promotion id (retry the stage)',
      };
    }
  }
  if (spec) {
    const by = rec?.state === 'canary' && sameModel(rec.to, spec.model) ? ` by promotion ${rec.id}` : '';
    return {
      action: 'refuse',
      exitCode: 1,
      reason:
        `${ref} already has a canary of ${spec.model.version}${by}; one candidate at a time. ` +
        `Wait for it, or remove it: kubectl -n ${fm.metadata.namespace} patch fnolmodel ${fm.metadata.name} --type=json -p '[{"op":"remove","path":"/spec/canary"}]'`,
    };
  }
  if (sameModel(fm.spec.model, candidate)) {
    return { action: 'promoted', reason: `${ref} already has ${candidate.version} in spec.model` };
  }
  return { action: 'start' };
}

/** The lines `fnolctl status` adds for a canary: a summary and the comparison table. */
export function describeCanary(fm: FnolModel): string[] {
  const spec = fm.spec.canary;
  const s = fm.status?.canary;
  if (!spec && !s) return [];
  const lines: string[] = [];
  if (spec) {
    lines.push(
      `  canary spec      ${spec.model.version}: traffic ${spec.trafficPercent ?? 0}%, mirror ${spec.mirrorPercent ?? 0}%`,
    );
  }
  if (s) {
    lines.push(
      `  canary status    ${printable(s.version ?? '-', 63)}: ready replicas ${s.readyReplicas ?? 0}, traffic ${s.trafficPercent ?? 0}%, mirror ${s.mirrorPercent ?? 0}% (as applied)`,
    );
  }
  const c = s?.comparison;
  if (!c) {
    lines.push('  comparison       none yet (needs mirrorPercent > 0 and mirrored requests)');
    return lines;
  }
  lines.push(
    `  comparison       ${c.requests ?? 0} requests compared on ${c.pods ?? 0} stable pods, ` +
      `${c.candidateErrors ?? 0} candidate errors, ${c.dropped ?? 0} dropped, updated ${printable(c.updatedAt ?? '-', 40)}`,
  );
  const ms = (v: number | undefined) => (v === undefined ? '-' : `${Number((v * 1000).toPrecision(3))} ms`);
  const ratio = latencyRatio(c);
  const latency =
    `${ms(c.candidateLatencyP99Seconds)} / ${ms(c.stableLatencyP99Seconds)}` +
    (ratio === undefined ? '' : Number.isFinite(ratio) ? ` (x${Number(ratio.toPrecision(3))})` : ' (x∞)');
  const header = [
    'output',
    'requests',
    'median diff',
    'p95 diff',
    'over threshold',
    'cand. errors',
    'p99 latency cand./stable',
  ];
  const rows = (c.outputs ?? []).map((o) => [
    printable(o.name, 63),
    String(c.requests ?? 0),
    formatPercent(o.medianRelativeDifference),
    formatPercent(o.p95RelativeDifference),
    `${formatPercent(o.exceedingShare)} (>${formatPercent(o.threshold)})`,
    formatPercent(c.candidateErrorRate),
    latency,
  ]);
  if (rows.length === 0)
    rows.push([
      '(none)',
      String(c.requests ?? 0),
      '-',
      '-',
      '-',
      formatPercent(c.candidateErrorRate),
      latency,
    ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    `    ${r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : i === r.length - 1 ? v : v.padStart(widths[i]!))).join('  ')}`.trimEnd();
  lines.push(fmt(header), ...rows.map(fmt));
  return lines;
}
