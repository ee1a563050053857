// The reference distributions a compiled model carries (metadata
// `reference_distributions`, docs/model-format.md), checked against the model's
// contract and turned into bins the scorer can count cheaply, and the population
// stability index (PSI) between two sets of shares.

import type { ModelContract } from './model-contract';

export const REFERENCE_KEY = 'reference_distributions';
export const REFERENCE_VERSION = 1;

/** Numbers: `edges` interior edges (upper-inclusive bins), then one slot for missing. */
export interface NumberBins {
  readonly kind: 'number';
  readonly edges: Float64Array;
  /**
   * The edges rounded to float32, which input values are binned against: the
   * graph is fed float32, and comparing two float32 values gives the float64
   * answer except for a value within one float32 step (6e-8 relative) of an
   * edge without being equal to it. Outputs (float32 already) use `edges`.
   */
  readonly edges32: Float64Array;
  /** Reference shares in PSI order: edges.length + 1 bins, then missing. */
  readonly expected: Float64Array;
}

/** Categories: one slot per listed value, then `other`, then missing. */
export interface CategoryBins {
  readonly kind: 'string';
  readonly index: ReadonlyMap<string, number>;
  readonly expected: Float64Array;
}

export type Bins = NumberBins | CategoryBins;

export interface InputReference {
  /** Index of the feature in contract order. */
  readonly feature: number;
  readonly name: string;
  readonly bins: Bins;
}

export interface OutputReference {
  /** The series label: the output's name, or `name[label]` for one column of a [N, K] output. */
  readonly label: string;
  readonly output: string;
  readonly column: number;
  readonly width: number;
  readonly bins: NumberBins;
}

export interface DriftReference {
  readonly epsilon: number;
  readonly inputs: readonly InputReference[];
  readonly outputs: readonly OutputReference[];
}

/** The model's references cannot be used; `problems` says which parts and why. */
export class ReferenceError extends Error {
  override name = 'ReferenceError';
  constructor(readonly problems: readonly string[]) {
    super(
      problems.slice(0, 5).join('; ') + (problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''),
    );
  }
}

const MAX_EDGES = 10;
const MAX_CATEGORIES = 50;
const MAX_CATEGORY_LENGTH = 100;
const SHARE_SUM_TOLERANCE = 1e-3;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isShare(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= 1;
}

function checkSum(shares: Float64Array, where: string, problems: string[]): void {
  let sum = 0;
  for (const s of shares) sum += s;
  if (Math.abs(sum - 1) > SHARE_SUM_TOLERANCE) {
    problems.push(`${where}: the shares add up to ${sum.toPrecision(6)}, not 1`);
  }
}

function numberBins(raw: Record<string, unknown>, where: string, problems: string[]): NumberBins | undefined {
  const { edges, shares, missing } = raw;
  const before = problems.length;
  if (
    !Array.isArray(edges) ||
    edges.length > MAX_EDGES ||
    !edges.every((e, i) => typeof e === 'number' && Number.isFinite(e) && (i === 0 || e > edges[i - 1]))
  ) {
    problems.push(`${where}: "edges" must be at most ${MAX_EDGES} finite numbers in increasing order`);
  }
  const count = Array.isArray(edges) ? edges.length + 1 : 0;
  if (!Array.isArray(shares) || shares.length !== count || !shares.every(isShare)) {
    problems.push(`${where}: "shares" must be ${count} numbers between 0 and 1 (one per bin)`);
  }
  if (!isShare(missing)) problems.push(`${where}: "missing" must be a number between 0 and 1`);
  if (problems.length > before) return undefined;
  const expected = Float64Array.from([...(shares as number[]), missing as number]);
  checkSum(expected, where, problems);
  return {
    kind: 'number',
    edges: Float64Array.from(edges as number[]),
    // Float64Array like `edges`, so one binary search (numberBin) serves both.
    edges32: Float64Array.from(edges as number[], Math.fround),
    expected,
  };
}

function categoryBins(
  raw: Record<string, unknown>,
  where: string,
  problems: string[],
): CategoryBins | undefined {
  const { values, shares, other, missing } = raw;
  const before = problems.length;
  if (
    !Array.isArray(values) ||
    values.length > MAX_CATEGORIES ||
    !values.every((v) => typeof v === 'string' && v.length > 0 && v.length <= MAX_CATEGORY_LENGTH) ||
    new Set(values).size !== values.length
  ) {
    problems.push(
      `${where}: "values" must be at most ${MAX_CATEGORIES} distinct non-empty texts of at most ${MAX_CATEGORY_LENGTH} characters`,
    );
  }
  const count = Array.isArray(values) ? values.length : 0;
  if (!Array.isArray(shares) || shares.length !== count || !shares.every(isShare)) {
    problems.push(`${where}: "shares" must be ${count} numbers between 0 and 1 (one per value)`);
  }
  if (!isShare(other)) problems.push(`${where}: "other" must be a number between 0 and 1`);
  if (!isShare(missing)) problems.push(`${where}: "missing" must be a number between 0 and 1`);
  if (problems.length > before) return undefined;
  const expected = Float64Array.from([...(shares as number[]), other as number, missing as number]);
  checkSum(expected, where, problems);
  return {
    kind: 'string',
    index: new Map((values as string[]).map((v, i) => [v, i])),
    expected,
  };
}

/**
 * Bins of one distribution of the document (`type` "number" or "string"),
 * or undefined with the problems pushed.
 */
export function parseDistribution(raw: unknown, where: string, problems: string[]): Bins | undefined {
  if (!isObject(raw)) {
    problems.push(`${where} is not an object`);
    return undefined;
  }
  if (raw.type === 'number') return numberBins(raw, where, problems);
  if (raw.type === 'string') return categoryBins(raw, where, problems);
  problems.push(`${where} has type ${JSON.stringify(raw.type)}; expected "number" or "string"`);
  return undefined;
}

/**
 * The model's reference distributions, checked against its contract: every
 * input and output has one, of the type the graph has. Returns undefined when
 * the model has none; throws ReferenceError when it has unusable ones.
 */
export function readReference(contract: ModelContract): DriftReference | undefined {
  // The contract holds every metadata value JSON-parsed, or as its text when it is not JSON.
  const doc = contract.metadata[REFERENCE_KEY];
  if (doc === undefined) return undefined;
  if (!isObject(doc)) {
    throw new ReferenceError([`metadata "${REFERENCE_KEY}" is not a JSON object (or not valid JSON)`]);
  }
  if (doc.version !== REFERENCE_VERSION) {
    throw new ReferenceError([
      `metadata "${REFERENCE_KEY}" has version ${JSON.stringify(doc.version)}; this scorer reads version ${REFERENCE_VERSION}`,
    ]);
  }
  const problems: string[] = [];
  const epsilon = doc.psi_epsilon;
  if (typeof epsilon !== 'number' || !(epsilon > 0 && epsilon <= 0.01)) {
    problems.push('"psi_epsilon" must be a number above 0 and at most 0.01');
  }
  const inputs = isObject(doc.inputs) ? doc.inputs : undefined;
  const outputs = isObject(doc.outputs) ? doc.outputs : undefined;
  if (inputs === undefined) problems.push('"inputs" must be an object (input name -> distribution)');
  if (outputs === undefined) problems.push('"outputs" must be an object (output name -> distribution)');

  const inputRefs: InputReference[] = [];
  const features = contract.features;
  if (inputs !== undefined) {
    const known = new Set(features.map((f) => f.name));
    for (const name of Object.keys(inputs)) {
      if (!known.has(name)) problems.push(`inputs.${name}: the graph has no input of that name`);
    }
    features.forEach((feature, index) => {
      const where = `inputs.${feature.name}`;
      if (!Object.hasOwn(inputs, feature.name)) {
        problems.push(`${where} is missing (every input needs a distribution)`);
        return;
      }
      const bins = parseDistribution(inputs[feature.name], where, problems);
      if (bins === undefined) return;
      if (bins.kind !== feature.type) {
        problems.push(`${where} is a ${bins.kind} distribution but the input takes ${feature.type}s`);
        return;
      }
      inputRefs.push({ feature: index, name: feature.name, bins });
    });
  }

  const outputRefs: OutputReference[] = [];
  if (outputs !== undefined) {
    const known = new Set(contract.outputs.map((o) => o.name));
    for (const name of Object.keys(outputs)) {
      if (!known.has(name)) problems.push(`outputs.${name}: the graph has no output of that name`);
    }
    for (const output of contract.outputs) {
      const where = `outputs.${output.name}`;
      const entry = outputs[output.name];
      if (!Object.hasOwn(outputs, output.name) || !isObject(entry)) {
        problems.push(`${where} is missing (every output needs a distribution)`);
        continue;
      }
      if (output.width === 1) {
        const bins = entry.type === 'number' ? numberBins(entry, where, problems) : undefined;
        if (entry.type !== 'number') problems.push(`${where} must have type "number" (one value per record)`);
        if (bins !== undefined) {
          outputRefs.push({ label: output.name, output: output.name, column: 0, width: 1, bins });
        }
        continue;
      }
      const columns = entry.columns;
      if (entry.type !== 'columns' || !Array.isArray(columns) || columns.length !== output.width) {
        problems.push(`${where} must have type "columns" with ${output.width} column distributions`);
        continue;
      }
      columns.forEach((column: unknown, j) => {
        const at = `${where}.columns[${j}]`;
        const bins =
          isObject(column) && column.type === 'number' ? numberBins(column, at, problems) : undefined;
        if (!isObject(column) || column.type !== 'number') problems.push(`${at} must have type "number"`);
        if (bins === undefined) return;
        const label = `${output.name}[${output.labels?.[j] ?? j}]`;
        outputRefs.push({ label, output: output.name, column: j, width: output.width, bins });
      });
    }
  }
  if (problems.length > 0) throw new ReferenceError(problems);
  return { epsilon: epsilon as number, inputs: inputRefs, outputs: outputRefs };
}

/** The number of edges strictly below x: its bin under upper-inclusive edges. */
export function numberBin(edges: Float64Array, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((edges[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * PSI = sum over bins of (o - e) * ln(o / e), with o = counts[b] / total and
 * both shares floored at epsilon (an empty bin contributes a finite amount).
 */
export function psi(
  expected: Float64Array,
  counts: ArrayLike<number>,
  total: number,
  epsilon: number,
): number {
  let sum = 0;
  for (let b = 0; b < expected.length; b++) {
    const e = Math.max(expected[b] as number, epsilon);
    const o = Math.max((counts[b] as number) / total, epsilon);
    sum += (o - e) * Math.log(o / e);
  }
  return sum;
}
