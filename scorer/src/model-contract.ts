// The model contract (docs/model-format.md): what a compiled model accepts and
// returns, derived from its graph signature and its metadata_props. Everything the
// scorer knows about a particular model comes from here.

export type FeatureType = 'number' | 'string';

export interface FeatureSpec {
  readonly name: string;
  readonly type: FeatureType;
  readonly nullable: boolean;
  /** Categories seen in training: informative, unseen values are valid. */
  readonly values: readonly string[] | undefined;
  /** Graph input rank: 2 for [N, 1] (the contract), 1 for [N]. */
  readonly rank: 1 | 2;
}

export interface SelfTest {
  readonly records: readonly Record<string, unknown>[];
  readonly expected: Readonly<Record<string, readonly number[]>>;
  readonly tolerance: { readonly relative: number; readonly absolute: number };
}

export interface ModelContract {
  readonly name: string;
  readonly version: string;
  /** Features in positional order (the order of a {"data": [[...]]} row). */
  readonly features: readonly FeatureSpec[];
  readonly primaryOutput: string;
  readonly outputs: readonly OutputSpec[];
  readonly selfTest: SelfTest;
  /** All metadata_props, JSON values parsed, for the model card endpoint. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * One graph output. `width` is its number of values per record: 1 for [N] and [N, 1],
 * K for [N, K] (served as an array of K numbers per record). `labels` name the K
 * columns when the metadata has them (`class_names` for multiclass models).
 */
export interface OutputSpec {
  readonly name: string;
  readonly description: string;
  readonly width: number;
  readonly labels: readonly string[] | undefined;
}

/** A record's value of an output: a number, or an array of `width` numbers. */
export type OutputValue = number | number[];

/** The value of record `r` in an output's row-major column ([N] or [N, width]). */
export function outputValue(output: OutputSpec, column: Float32Array, r: number): OutputValue {
  if (output.width === 1) return column[r] as number;
  return Array.from(column.subarray(r * output.width, (r + 1) * output.width));
}

/** Every record's value of an output, in record order. */
export function outputValues(output: OutputSpec, column: Float32Array): OutputValue[] {
  if (output.width === 1) {
    // A loop, not Array.from: that goes through the typed array's iterator, a few µs per answer.
    const values = new Array<number>(column.length);
    for (let r = 0; r < column.length; r++) values[r] = column[r] as number;
    return values;
  }
  const n = column.length / output.width;
  const values = new Array<OutputValue>(n);
  for (let r = 0; r < n; r++) values[r] = outputValue(output, column, r);
  return values;
}

/** The part of an onnxruntime session's signature the contract is checked against. */
export interface GraphSignature {
  readonly inputs: readonly GraphValue[];
  readonly outputs: readonly GraphValue[];
}
export interface GraphValue {
  readonly name: string;
  readonly type: string | undefined;
  readonly shape: readonly (number | string)[];
}

export class ContractError extends Error {
  override name = 'ContractError';
}

export interface ExpectedIdentity {
  readonly name: string | undefined;
  readonly version: string | undefined;
}

export function buildContract(
  props: ReadonlyMap<string, string>,
  graph: GraphSignature,
  expected: ExpectedIdentity,
): ModelContract {
  const problems: string[] = [];
  const raw = (key: string): string | undefined => {
    const value = props.get(key);
    if (value === undefined) problems.push(`metadata_props has no "${key}"`);
    return value;
  };
  const json = (key: string): unknown => {
    const value = raw(key);
    if (value === undefined) return undefined;
    try {
      return JSON.parse(value);
    } catch {
      problems.push(`metadata_props "${key}" is not valid JSON`);
      return undefined;
    }
  };

  const name = raw('name') ?? '';
  const version = raw('version') ?? '';
  if (expected.name !== undefined && name !== expected.name) {
    problems.push(
      `the model is named "${name}" but MODEL_NAME is "${expected.name}"; point MODEL_URI at the right file`,
    );
  }
  if (expected.version !== undefined && version !== expected.version) {
    problems.push(
      `the model has version "${version}" but MODEL_VERSION is "${expected.version}"; point MODEL_URI at the right file`,
    );
  }

  const inputs = new Map(graph.inputs.map((v) => [v.name, v]));
  const order = json('feature_order');
  const declared = json('features');
  const features: FeatureSpec[] = [];
  if (!isStringArray(order)) {
    if (order !== undefined)
      problems.push('metadata_props "feature_order" must be a JSON array of input names');
  } else if (!Array.isArray(declared)) {
    if (declared !== undefined) problems.push('metadata_props "features" must be a JSON array');
  } else {
    const byName = new Map<string, Record<string, unknown>>();
    for (const entry of declared) {
      if (isObject(entry) && typeof entry.name === 'string') byName.set(entry.name, entry);
      else problems.push(`metadata_props "features" has an entry without a name: ${JSON.stringify(entry)}`);
    }
    if (new Set(order).size !== order.length)
      problems.push('metadata_props "feature_order" lists a name twice');
    for (const featureName of order) {
      const spec = byName.get(featureName);
      const input = inputs.get(featureName);
      if (spec === undefined) {
        problems.push(`feature "${featureName}" is in feature_order but not in features`);
        continue;
      }
      if (input === undefined) {
        problems.push(`feature "${featureName}" is in feature_order but the graph has no input of that name`);
        continue;
      }
      const type = spec.type;
      if (type !== 'number' && type !== 'string') {
        problems.push(
          `feature "${featureName}" has type ${JSON.stringify(type)}; expected "number" or "string"`,
        );
        continue;
      }
      const tensorType = type === 'number' ? 'float32' : 'string';
      if (input.type !== tensorType) {
        problems.push(
          `feature "${featureName}" is a ${type} but graph input has type ${input.type}; expected ${tensorType}`,
        );
      }
      const rank = input.shape.length;
      if (!(rank === 1 || (rank === 2 && (input.shape[1] === 1 || typeof input.shape[1] === 'string')))) {
        problems.push(`graph input "${featureName}" has shape [${input.shape.join(', ')}]; expected [N, 1]`);
      }
      features.push({
        name: featureName,
        type,
        nullable: spec.nullable === true,
        values: isStringArray(spec.values) ? spec.values : undefined,
        rank: rank === 1 ? 1 : 2,
      });
    }
    for (const input of graph.inputs) {
      if (!order.includes(input.name))
        problems.push(`graph input "${input.name}" is missing from feature_order`);
    }
  }

  const outputDescriptions = json('outputs');
  const classNames = props.has('class_names') ? json('class_names') : undefined;
  const outputs: OutputSpec[] = graph.outputs.map((o) => {
    const width = outputWidth(o, problems);
    return {
      name: o.name,
      description:
        isObject(outputDescriptions) && typeof outputDescriptions[o.name] === 'string'
          ? (outputDescriptions[o.name] as string)
          : '',
      width,
      labels: width > 1 && isStringArray(classNames) && classNames.length === width ? classNames : undefined,
    };
  });
  for (const output of graph.outputs) {
    if (output.type !== 'float32')
      problems.push(`graph output "${output.name}" has type ${output.type}; expected float32`);
  }
  const primaryOutput = raw('primary_output') ?? '';
  if (props.has('primary_output') && !outputs.some((o) => o.name === primaryOutput)) {
    problems.push(
      `primary_output "${primaryOutput}" is not a graph output (${outputs.map((o) => o.name).join(', ')})`,
    );
  }

  const selfTest = parseSelfTest(json('self_test'), outputs, problems);

  if (problems.length > 0) {
    throw new ContractError(
      `the model does not follow the compiled-model contract (docs/model-format.md):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of props) {
    try {
      metadata[key] = ['name', 'version', 'primary_output', 'compiler'].includes(key)
        ? value
        : JSON.parse(value);
    } catch {
      metadata[key] = value;
    }
  }
  return { name, version, features, primaryOutput, outputs, selfTest: selfTest as SelfTest, metadata };
}

/** Values per record of a graph output: [N] or [N, 1] give 1, [N, K] gives K. */
function outputWidth(output: GraphValue, problems: string[]): number {
  const { shape } = output;
  if (shape.length <= 1) return 1; // [N], or a shape the graph leaves unknown
  const k = shape[1];
  if (shape.length === 2 && (typeof k === 'string' || k === 1)) return 1;
  if (shape.length === 2 && typeof k === 'number' && Number.isInteger(k) && k > 1) return k;
  problems.push(
    `graph output "${output.name}" has shape [${shape.join(', ')}]; expected [N], [N, 1] or [N, K] with a fixed K`,
  );
  return 1;
}

function parseSelfTest(
  value: unknown,
  outputs: readonly OutputSpec[],
  problems: string[],
): SelfTest | undefined {
  if (value === undefined) return undefined;
  const where = 'metadata_props "self_test"';
  if (!isObject(value) || !Array.isArray(value.records) || !isObject(value.expected)) {
    problems.push(`${where} must be an object with "records" (array) and "expected" (object)`);
    return undefined;
  }
  const n = value.records.length;
  if (n === 0) problems.push(`${where} has no records`);
  for (const [output, numbers] of Object.entries(value.expected)) {
    const spec = outputs.find((o) => o.name === output);
    if (spec === undefined) problems.push(`${where} expects output "${output}" the graph lacks`);
    else if (spec.width !== 1)
      problems.push(
        `${where} expects output "${output}", which has ${spec.width} values per record; only outputs of one value per record can be expected`,
      );
    if (!Array.isArray(numbers) || numbers.length !== n || !numbers.every((x) => typeof x === 'number')) {
      problems.push(`${where} expected.${output} must be ${n} numbers, one per record`);
    }
  }
  const tolerance = isObject(value.tolerance) ? value.tolerance : {};
  const relative = typeof tolerance.relative === 'number' ? tolerance.relative : 1e-4;
  const absolute = typeof tolerance.absolute === 'number' ? tolerance.absolute : 0;
  return {
    records: value.records as Record<string, unknown>[],
    expected: value.expected as Record<string, number[]>,
    tolerance: { relative, absolute },
  };
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
