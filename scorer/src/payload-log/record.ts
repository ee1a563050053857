// One payload-log record (docs/payload-logging.md, schema in
// docs/payload-log.schema.json): a scored request, its inputs per feature (by
// the model's feature names, redacted fields hashed or left out) and its
// predictions. Built from what the route kept, in the writer, off the request path.

import { createHmac } from 'node:crypto';
import type { FeatureSpec, ModelContract, OutputSpec } from '../model-contract';
import type { RedactConfig, RedactMode } from './config';

export const SCHEMA_VERSION = 1;

/** Records of one request per log line; a larger batch is written as several parts. */
export const RECORDS_PER_LINE = 256;

/** What a route hands over once its answer is sent: references only, no copies. */
export interface ScoredRequest {
  /** Wall-clock time of the answer, epoch milliseconds. */
  readonly time: number;
  readonly requestId: string;
  readonly route: string;
  /** data (rows in feature order), records (objects) or v2 (tensors). */
  readonly form: 'data' | 'records' | 'v2';
  readonly latencyMs: number;
  readonly n: number;
  /** Value of feature `f` (contract order) in record `r`. */
  readonly value: (f: number, r: number) => unknown;
  /** The rows themselves, in feature order, when the request sent them so ("data"). */
  readonly rows?: readonly (readonly unknown[])[] | undefined;
  /** The output columns computed for the request, by output name. */
  readonly outputs: Readonly<Record<string, unknown>>;
}

/** How a model's features are logged: resolved once per model from the contract and RedactConfig. */
export interface RedactionPlan {
  /** Per feature (contract order): undefined (logged as is), hash or drop. */
  readonly byFeature: readonly (RedactMode | undefined)[];
  /** The redacted features by name, as the records say. */
  readonly summary: Readonly<Record<string, RedactMode>>;
  /** Indexes (contract order) of the features written, and their names. */
  readonly kept: readonly number[];
  readonly keptNames: readonly string[];
  /** Indexes of the hashed features. */
  readonly hashed: readonly number[];
}

export class RedactionConfigError extends Error {
  override name = 'RedactionConfigError';
}

/** A string feature without a list of categories holds free text. */
export function isFreeText(feature: FeatureSpec): boolean {
  return feature.type === 'string' && (feature.values === undefined || feature.values.length === 0);
}

export function planRedaction(contract: ModelContract, redact: RedactConfig): RedactionPlan {
  const names = new Set(contract.features.map((f) => f.name));
  const unknown = redact.fields.filter((f) => !names.has(f));
  if (unknown.length > 0) {
    throw new RedactionConfigError(
      `PAYLOAD_LOG_REDACT_FIELDS names ${unknown.map((f) => JSON.stringify(f)).join(', ')}, which model ${contract.name} ${contract.version} does not have (its features: ${contract.features.map((f) => f.name).join(', ')}); fix the list (spec.logging.redact.fields)`,
    );
  }
  const listed = new Set(redact.fields);
  const summary: Record<string, RedactMode> = {};
  const byFeature = contract.features.map((f) => {
    if (listed.has(f.name) || (redact.freeText && isFreeText(f))) {
      summary[f.name] = redact.mode;
      return redact.mode;
    }
    return undefined;
  });
  const kept = byFeature.flatMap((mode, f) => (mode === 'drop' ? [] : [f]));
  return {
    byFeature,
    summary,
    kept,
    keptNames: kept.map((f) => (contract.features[f] as FeatureSpec).name),
    hashed: byFeature.flatMap((mode, f) => (mode === 'hash' ? [f] : [])),
  };
}

export interface ModelIdentity {
  readonly contract: ModelContract;
  readonly sha256: string | undefined;
  readonly plan: RedactionPlan;
  readonly hashKey: Buffer | undefined;
}

/**
 * The JSON Lines of one logged request (one line per RECORDS_PER_LINE records).
 * Records are positional: `inputs` rows follow `features` and `predictions`
 * rows follow `outputs`, so a line is one native JSON.stringify of arrays;
 * objects keyed by feature name per record cost several times more for a
 * batch, most of it in the garbage collector.
 */
export function serialize(request: ScoredRequest, model: ModelIdentity): string {
  const { contract, plan } = model;
  const outputs = contract.outputs.filter((o) => request.outputs[o.name] !== undefined);
  const columns = outputs.map((o) => request.outputs[o.name] as Float32Array);
  const kept = plan.kept;
  const plain = kept.length === contract.features.length && plan.hashed.length === 0;
  const head = {
    schema: SCHEMA_VERSION,
    time: new Date(request.time).toISOString(),
    requestId: request.requestId,
    model: { name: contract.name, version: contract.version, sha256: model.sha256 ?? null },
    route: request.route,
    form: request.form,
    latencyMs: Math.round(request.latencyMs * 1000) / 1000,
    redacted: plan.summary,
    features: plan.keptNames,
    outputs: outputs.map((o) => o.name),
  };
  const parts = Math.max(1, Math.ceil(request.n / RECORDS_PER_LINE));
  let text = '';
  for (let p = 0; p < parts; p++) {
    const from = p * RECORDS_PER_LINE;
    const to = Math.min(request.n, from + RECORDS_PER_LINE);
    const inputs = new Array<unknown[]>(to - from);
    const predictions = new Array<unknown[]>(to - from);
    for (let r = from; r < to; r++) {
      let row: unknown[];
      const given = request.rows?.[r];
      if (plain && given !== undefined) row = given as unknown[];
      else {
        row = new Array<unknown>(kept.length);
        for (let k = 0; k < kept.length; k++) {
          const f = kept[k] as number;
          const value = request.value(f, r) ?? null;
          row[k] = plan.byFeature[f] === 'hash' ? hashValue(value, model.hashKey) : value;
        }
      }
      inputs[r - from] = row;
      const prediction = new Array<unknown>(outputs.length);
      for (let o = 0; o < outputs.length; o++) {
        const width = (outputs[o] as OutputSpec).width;
        const column = columns[o] as Float32Array;
        prediction[o] = width === 1 ? column[r] : Array.from(column.subarray(r * width, (r + 1) * width));
      }
      predictions[r - from] = prediction;
    }
    // JSON.stringify writes NaN and infinities as null.
    text += JSON.stringify({ ...head, part: { index: p, count: parts }, inputs, predictions }) + '\n';
  }
  return text;
}

/** HMAC-SHA256 of the value's text, keyed: equal values stay joinable, the value is not recoverable. */
export function hashValue(value: unknown, key: Buffer | undefined): string | null {
  if (value === null) return null;
  return `hmac-sha256:${createHmac('sha256', key ?? Buffer.alloc(0))
    .update(typeof value === 'string' ? value : JSON.stringify(value))
    .digest('hex')}`;
}
