// Request schemas derived from the model contract, compiled with ajv once when the
// model is loaded. The same schema objects are published in /openapi.json.

import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import type { FeatureSpec, ModelContract } from './model-contract';

export const MAX_CATEGORY_LENGTH = 1000;
/** Largest float32: numbers beyond it would reach the model as infinities. */
export const MAX_FLOAT32 = 3.4028234663852886e38;
/** At most this many problems are listed in an error answer; the rest are counted. */
export const MAX_DETAILS = 100;

export interface RequestSchemas {
  readonly featureValue: Record<string, object>;
  readonly record: object;
  readonly row: object;
  readonly recordsRequest: object;
  readonly dataRequest: object;
}

/** One problem in a request, pointing at the record (or row) and the field. */
export interface RequestProblem {
  index?: number;
  position?: number;
  field?: string;
  reason?: string;
}

export interface RequestValidators {
  readonly schemas: RequestSchemas;
  /** Fast path: stops at the first problem. */
  readonly records: ValidateFunction;
  readonly data: ValidateFunction;
  /** Reports every problem; used only once a request is known to be bad. */
  describeRecords(body: unknown): RequestProblem[];
  describeData(body: unknown): RequestProblem[];
  /**
   * One value of feature `f` (index in contract order), checked against the same
   * schema as a value of a record or row: the check every protocol shares.
   */
  value(f: number, value: unknown): boolean;
  /** Why `value` is not a valid value of feature `f`, in the words /score uses. */
  describeValue(f: number, value: unknown): string;
}

export function featureValueSchema(feature: FeatureSpec): object {
  if (feature.type === 'number') {
    return {
      type: feature.nullable ? ['number', 'null'] : 'number',
      minimum: -MAX_FLOAT32,
      maximum: MAX_FLOAT32,
    };
  }
  // Categories are text; an integer is read as its decimal text, as CatBoost does.
  return {
    type: feature.nullable ? ['string', 'integer', 'null'] : ['string', 'integer'],
    maxLength: MAX_CATEGORY_LENGTH,
    minimum: -Number.MAX_SAFE_INTEGER,
    maximum: Number.MAX_SAFE_INTEGER,
  };
}

export function buildRequestSchemas(contract: ModelContract): RequestSchemas {
  const featureValue: Record<string, object> = {};
  for (const f of contract.features) featureValue[f.name] = featureValueSchema(f);
  const names = contract.features.map((f) => f.name);
  const record = {
    type: 'object',
    properties: featureValue,
    required: names,
    additionalProperties: false,
  };
  const row = {
    type: 'array',
    prefixItems: contract.features.map((f) => featureValue[f.name]),
    items: false,
    minItems: names.length,
  };
  return {
    featureValue,
    record,
    row,
    recordsRequest: {
      type: 'object',
      properties: { records: { type: 'array', minItems: 1, items: record } },
      required: ['records'],
      additionalProperties: false,
    },
    dataRequest: {
      type: 'object',
      properties: { data: { type: 'array', minItems: 1, items: row } },
      required: ['data'],
      additionalProperties: false,
    },
  };
}

export function compileValidators(contract: ModelContract): RequestValidators {
  const schemas = buildRequestSchemas(contract);
  const fast = new Ajv2020({ allErrors: false, strict: true, allowUnionTypes: true });
  const thorough = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  const records = fast.compile(schemas.recordsRequest);
  const data = fast.compile(schemas.dataRequest);
  const recordsAll = thorough.compile(schemas.recordsRequest);
  const dataAll = thorough.compile(schemas.dataRequest);
  const describe = (
    validate: ValidateFunction,
    body: unknown,
    listKey: 'records' | 'data',
  ): RequestProblem[] => {
    if (validate(body)) return [];
    return describeErrors(validate.errors ?? [], body, listKey, contract.features);
  };
  const values = contract.features.map((f) => fast.compile(schemas.featureValue[f.name] as object));
  return {
    schemas,
    records,
    data,
    describeRecords: (body) => describe(recordsAll, body, 'records'),
    describeData: (body) => describe(dataAll, body, 'data'),
    value: (f, value) => (values[f] as ValidateFunction)(value),
    describeValue: (f, value) => {
      const validate = values[f] as ValidateFunction;
      const feature = contract.features[f] as FeatureSpec;
      const error = validate(value) ? undefined : validate.errors?.[0];
      if (error === undefined) return 'valid';
      return reasonFor(error, 3, value, 'records', contract.features.length, feature.name, contract.features);
    },
  };
}

/** The first MAX_DETAILS problems, and one more entry saying how many were left out. */
export function capProblems(problems: readonly RequestProblem[], more = 0): RequestProblem[] {
  const left = problems.length - MAX_DETAILS + more;
  if (left <= 0) return [...problems];
  return [...problems.slice(0, MAX_DETAILS), { reason: `up to ${left} more problems not listed` }];
}

function describeErrors(
  errors: readonly ErrorObject[],
  body: unknown,
  listKey: 'records' | 'data',
  features: readonly FeatureSpec[],
): RequestProblem[] {
  const problems: RequestProblem[] = [];
  const seen = new Set<string>();
  const positional = listKey === 'data';
  const n = features.length;
  for (let e = 0; e < errors.length; e++) {
    const error = errors[e] as ErrorObject;
    const path = error.instancePath.split('/').slice(1);
    // path: [] | [listKey] | [listKey, index] | [listKey, index, field-or-position]
    const problem: RequestProblem = { reason: '' };
    if (path.length >= 2) problem.index = Number(path[1]);
    if (path.length >= 3) {
      if (positional) {
        problem.position = Number(path[2]);
        problem.field = features[problem.position]?.name;
      } else {
        problem.field = decodePointer(path[2] as string);
      }
    }
    const value = valueAt(body, path);
    problem.reason = reasonFor(error, path.length, value, listKey, n, problem.field, features);
    if (error.keyword === 'required' && path.length === 2)
      problem.field = error.params.missingProperty as string;
    if (error.keyword === 'additionalProperties' && path.length === 2) {
      problem.field = error.params.additionalProperty as string;
    }
    const ordered: RequestProblem = {};
    if (problem.index !== undefined) ordered.index = problem.index;
    if (problem.position !== undefined) ordered.position = problem.position;
    if (problem.field !== undefined) ordered.field = problem.field;
    ordered.reason = problem.reason;
    const key = JSON.stringify(ordered);
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(ordered);
    if (problems.length >= MAX_DETAILS) {
      // Counting the rest exactly would cost as much as describing them.
      return capProblems(problems, errors.length - e - 1);
    }
  }
  return problems;
}

function reasonFor(
  error: ErrorObject,
  depth: number,
  value: unknown,
  listKey: string,
  n: number,
  field: string | undefined,
  features: readonly FeatureSpec[],
): string {
  const unit = listKey === 'data' ? 'row' : 'record';
  if (depth === 0) {
    if (error.keyword === 'required') return `body has no "${listKey}"`;
    if (error.keyword === 'additionalProperties') {
      return `unknown top-level field "${error.params.additionalProperty as string}"; send only "${listKey}"`;
    }
    return `body must be a JSON object with "${listKey}"`;
  }
  if (depth === 1) {
    if (error.keyword === 'minItems') return `"${listKey}" is empty; send at least one ${unit}`;
    return `"${listKey}" must be an array of ${unit}s`;
  }
  if (depth === 2) {
    switch (error.keyword) {
      case 'required':
        return 'missing feature';
      case 'additionalProperties':
        return 'unknown field: the model has no feature of this name';
      case 'minItems':
        return `row has ${describeLength(value)} values; the model takes ${n}, in the order of feature_order`;
      case 'items':
        return `row has ${describeLength(value)} values; the model takes ${n}, in the order of feature_order`;
      default:
        return listKey === 'data'
          ? `row must be an array of ${n} values, got ${describeValue(value)}`
          : `record must be an object of feature: value, got ${describeValue(value)}`;
    }
  }
  const feature = features.find((f) => f.name === field);
  const expected = feature?.type === 'number' ? 'a number' : 'a string or an integer';
  switch (error.keyword) {
    case 'type':
      if (value === null) return 'missing value: this feature does not accept null';
      if (typeof value === 'number' && feature?.type === 'string') {
        return `wrong type: a categorical feature takes a string or an integer, got the number ${value}`;
      }
      return `wrong type: expected ${expected}, got ${describeValue(value)}`;
    case 'maxLength':
      return `category text longer than ${MAX_CATEGORY_LENGTH} characters`;
    case 'minimum':
    case 'maximum':
      return feature?.type === 'number'
        ? 'number outside the float32 range the model computes in'
        : 'integer too large to read as a category; send it as a string';
    default:
      return error.message ?? 'invalid value';
  }
}

function describeLength(value: unknown): string {
  return Array.isArray(value) ? String(value.length) : 'no';
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') {
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  }
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function decodePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function valueAt(body: unknown, path: readonly string[]): unknown {
  let current = body;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[decodePointer(segment)];
  }
  return current;
}
