// Compares the candidate's answer with the stable one, record by record and
// output by output. The stable side is the scored tensors themselves (before
// JSON); the candidate's side is its parsed, untrusted answer, which must have
// the same form, the same records and the expected model version.

import { CandidateError } from './sender';

/** The form of the answer: POST /score with "data", with "records", or v2 infer. */
export type AnswerForm = 'data' | 'records' | 'v2';

export interface StableOutput {
  readonly name: string;
  /** Values per record (1: a number, K: an array of K numbers). */
  readonly width: number;
  /** Row-major values of every record, as scored. */
  readonly values: Float32Array;
}

/** What the stable scorer answered, for the comparison. */
export interface StableAnswer {
  readonly form: AnswerForm;
  readonly records: number;
  readonly outputs: readonly StableOutput[];
}

/** Per output, the relative difference of each record (in record order). */
export interface Comparison {
  readonly outputs: readonly { readonly name: string; readonly differences: Float64Array }[];
}

/**
 * |candidate - stable| / max(|stable|, 1): relative for values over 1, absolute
 * below (so values near 0 do not blow up). Both missing (NaN, sent as null) is
 * no difference; one of them missing is an infinite one.
 */
export function relativeDifference(stable: number, candidate: number | null): number {
  const stableMissing = Number.isNaN(stable);
  const candidateMissing = candidate === null || Number.isNaN(candidate);
  if (stableMissing || candidateMissing) return stableMissing && candidateMissing ? 0 : Infinity;
  if (stable === candidate) return 0;
  const d = Math.abs((candidate as number) - stable) / Math.max(Math.abs(stable), 1);
  return Number.isNaN(d) ? Infinity : d; // Infinity - Infinity
}

const shape = (message: string) => new CandidateError('shape', message);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A number or null (NaN); anything else is another shape. */
function scalar(value: unknown, where: string): number | null {
  if (typeof value === 'number' || value === null) return value;
  throw shape(`${where} is not a number`);
}

/**
 * The largest difference over the `width` values of record `r`: `value` is the
 * candidate's value of that record as /score sends it (a number, or an array
 * of `width`), `where` names it in a shape error.
 */
function recordDifference(stable: StableOutput, r: number, value: unknown, where: () => string): number {
  const { width, values } = stable;
  if (width === 1) {
    if (typeof value !== 'number' && value !== null) throw shape(`${where()} is not a number`);
    return relativeDifference(values[r] as number, value);
  }
  if (!Array.isArray(value) || value.length !== width) {
    throw shape(`${where()} is not an array of ${width} numbers`);
  }
  let worst = 0;
  for (let k = 0; k < width; k++) {
    const d = relativeDifference(values[r * width + k] as number, scalar(value[k], `${where()}[${k}]`));
    if (d > worst) worst = d;
  }
  return worst;
}

function checkVersion(found: unknown, version: string): void {
  if (found !== version) {
    throw new CandidateError(
      'version',
      `answered with model version ${JSON.stringify(found)}, expected ${JSON.stringify(version)}`,
    );
  }
}

/**
 * Compares the stable answer of one request with its records' part of a
 * candidate list of /score: `list[offset]` onwards, `stable.records` entries
 * (the answer's "result" for the data form, "predictions" for the records
 * form). Copies sent together are compared with their own part of the one
 * answer this way, without a list of their own. A CandidateError (shape) when
 * a value cannot be compared; positions in it count from the request's first
 * record.
 */
export function compareList(stable: StableAnswer, list: readonly unknown[], offset: number): Comparison {
  const n = stable.records;
  if (stable.form === 'data') {
    const output = stable.outputs[0] as StableOutput;
    const differences = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      differences[r] = recordDifference(output, r, list[offset + r], () => `result[${r}]`);
    }
    return { outputs: [{ name: output.name, differences }] };
  }
  const outputs = stable.outputs.map((o) => ({ name: o.name, differences: new Float64Array(n) }));
  for (let r = 0; r < n; r++) {
    const prediction: unknown = list[offset + r];
    if (!isObject(prediction)) throw shape(`predictions[${r}] is not an object`);
    for (let i = 0; i < outputs.length; i++) {
      const o = stable.outputs[i] as StableOutput;
      if (!Object.hasOwn(prediction, o.name)) throw shape(`predictions[${r}].${o.name} is missing`);
      (outputs[i] as { differences: Float64Array }).differences[r] = recordDifference(
        o,
        r,
        prediction[o.name],
        () => `predictions[${r}].${o.name}`,
      );
    }
  }
  return { outputs };
}

/** The model version a "records" answer of /score names (its `model.version`), checked. */
export function checkRecordsModel(model: unknown, version: string): void {
  checkVersion(isObject(model) ? model.version : undefined, version);
}

/**
 * Compares a candidate's parsed answer with the stable answer; a CandidateError
 * (shape or version) when it cannot be compared.
 */
export function compareAnswers(stable: StableAnswer, candidate: unknown, version: string): Comparison {
  if (!isObject(candidate)) throw shape('the answer is not a JSON object');
  const n = stable.records;
  if (stable.form === 'data') {
    const result = candidate.result;
    if (!Array.isArray(result) || result.length !== n) throw shape(`"result" is not an array of ${n}`);
    return compareList(stable, result, 0);
  }
  if (stable.form === 'records') {
    checkRecordsModel(candidate.model, version);
    const predictions = candidate.predictions;
    if (!Array.isArray(predictions) || predictions.length !== n) {
      throw shape(`"predictions" is not an array of ${n}`);
    }
    return compareList(stable, predictions, 0);
  }
  checkVersion(candidate.model_version, version);
  const tensors = candidate.outputs;
  if (!Array.isArray(tensors)) throw shape('"outputs" is not an array');
  const outputs = stable.outputs.map((o) => {
    const tensor: unknown = tensors.find((t) => isObject(t) && t.name === o.name);
    if (!isObject(tensor)) throw shape(`output ${o.name} is missing`);
    const dims = tensor.shape;
    const data = tensor.data;
    if (!Array.isArray(dims) || dims[0] !== n || (dims.length > 1 && dims[1] !== o.width)) {
      throw shape(`output ${o.name} does not have the shape [${n}, ${o.width}]`);
    }
    if (!Array.isArray(data) || data.length !== n * o.width) {
      throw shape(`output ${o.name} does not hold ${n * o.width} values`);
    }
    const differences = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let worst = 0;
      for (let k = 0; k < o.width; k++) {
        const at = r * o.width + k;
        const d = relativeDifference(o.values[at] as number, scalar(data[at], `${o.name}.data[${at}]`));
        if (d > worst) worst = d;
      }
      differences[r] = worst;
    }
    return { name: o.name, differences };
  });
  return { outputs };
}
