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
  /** The output columns computed for the request, by output name. */
  readonly outputs: Readonly<Record<string, unknown>>;
}

/** How a model's features are logged: resolved once per model from the contract and RedactConfig. */
export interface RedactionPlan {
  /** Per feature (contract order): undefined (logged as is), hash or drop. */
  readonly byFeature: readonly (RedactMode | undefined)[];
  /** The redacted features by name, as the records say. */
  readonly summary: Readonly<Record<string, RedactMode>>;
  /** Per feature: `,"name":`, its key in a record's inputs as JSON text. */
  readonly inputKeys: readonly string[];
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
  return { byFeature, summary, inputKeys: contract.features.map((f) => `,${JSON.stringify(f.name)}:`) };
}

export interface ModelIdentity {
  readonly contract: ModelContract;
  readonly sha256: string | undefined;
  readonly plan: RedactionPlan;
  readonly hashKey: Buffer | undefined;
}

/** The JSON Lines of one logged request (one line per RECORDS_PER_LINE records). */
export function serialize(request: ScoredRequest, model: ModelIdentity): string {
  const { contract, plan } = model;
  const features = contract.features;
  const outputs = contract.outputs.filter((o) => request.outputs[o.name] !== undefined);
  const columns = outputs.map((o) => request.outputs[o.name] as Float32Array);
  // The records are written as text directly: building an object per record
  // and stringifying it costs several times more for a batch.
  const inputKeys = plan.inputKeys;
  const outputKeys = outputs.map((o, i) => `${i === 0 ? '' : ','}${JSON.stringify(o.name)}:`);
  const head =
    `{"schema":${SCHEMA_VERSION},"time":${JSON.stringify(new Date(request.time).toISOString())}` +
    `,"requestId":${JSON.stringify(request.requestId)}` +
    `,"model":${JSON.stringify({ name: contract.name, version: contract.version, sha256: model.sha256 ?? null })}` +
    `,"route":${JSON.stringify(request.route)},"form":"${request.form}"` +
    `,"latencyMs":${jsonNumber(Math.round(request.latencyMs * 1000) / 1000)}` +
    `,"redacted":${JSON.stringify(plan.summary)}`;
  const parts = Math.max(1, Math.ceil(request.n / RECORDS_PER_LINE));
  let text = '';
  for (let p = 0; p < parts; p++) {
    const from = p * RECORDS_PER_LINE;
    const to = Math.min(request.n, from + RECORDS_PER_LINE);
    let line = `${head},"part":{"index":${p},"count":${parts}},"records":[`;
    for (let r = from; r < to; r++) {
      line += r === from ? '{"inputs":{' : ',{"inputs":{';
      let first = true;
      for (let f = 0; f < features.length; f++) {
        const mode = plan.byFeature[f];
        if (mode === 'drop') continue;
        const value = request.value(f, r) ?? null;
        const key = inputKeys[f] as string;
        line += first ? key.slice(1) : key;
        first = false;
        line += mode === 'hash' ? JSON.stringify(hashValue(value, model.hashKey)) : jsonValue(value);
      }
      line += '},"predictions":{';
      for (let o = 0; o < outputs.length; o++) {
        const spec = outputs[o] as OutputSpec;
        const column = columns[o] as Float32Array;
        line += outputKeys[o] as string;
        if (spec.width === 1) line += jsonNumber(column[r] as number);
        else {
          line += '[';
          for (let k = 0; k < spec.width; k++)
            line += (k === 0 ? '' : ',') + jsonNumber(column[r * spec.width + k] as number);
          line += ']';
        }
      }
      line += '}}';
    }
    text += line + ']}\n';
  }
  return text;
}

/** A number as JSON writes it: a non-finite one (which JSON cannot hold) is null. */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

function jsonValue(value: unknown): string {
  return typeof value === 'number' ? jsonNumber(value) : (JSON.stringify(value) ?? 'null');
}

/** HMAC-SHA256 of the value's text, keyed: equal values stay joinable, the value is not recoverable. */
export function hashValue(value: unknown, key: Buffer | undefined): string | null {
  if (value === null) return null;
  return `hmac-sha256:${createHmac('sha256', key ?? Buffer.alloc(0))
    .update(typeof value === 'string' ? value : JSON.stringify(value))
    .digest('hex')}`;
}
