// Open Inference Protocol (v2, as spoken by KServe and Triton): model metadata and
// the JSON inference request. Numbers travel as FP32 tensors, categories as BYTES.

import Ajv2020 from 'ajv/dist/2020';
import { HttpError } from './http-errors';
import type { FeatureSpec, ModelContract } from './model-contract';
import type { ColumnBatch, Outputs } from './model-runtime';
import { capProblems, describeValue, type RequestProblem, type RequestValidators } from './request-schema';

const NUMBER_TYPES = new Set([
  'FP32',
  'FP64',
  'FP16',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'UINT8',
  'UINT16',
  'UINT32',
]);

export const inferRequestSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 256 },
    parameters: { type: 'object' },
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1, maxItems: 2 },
          datatype: { type: 'string' },
          parameters: { type: 'object' },
          data: { type: 'array' },
        },
        required: ['name', 'shape', 'datatype', 'data'],
        additionalProperties: false,
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, parameters: { type: 'object' } },
        required: ['name'],
        additionalProperties: false,
      },
    },
  },
  required: ['inputs'],
  additionalProperties: false,
} as const;

const tensorMetadataSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    datatype: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' } },
  },
  required: ['name', 'datatype', 'shape'],
};

export const modelMetadataSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    versions: { type: 'array', items: { type: 'string' } },
    platform: { type: 'string' },
    inputs: { type: 'array', items: tensorMetadataSchema },
    outputs: { type: 'array', items: tensorMetadataSchema },
  },
  required: ['name', 'platform', 'inputs', 'outputs'],
};

export const inferResponseSchema = {
  type: 'object',
  properties: {
    model_name: { type: 'string' },
    model_version: { type: 'string' },
    id: { type: 'string' },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          datatype: { const: 'FP32' },
          shape: { type: 'array', items: { type: 'integer' } },
          data: { type: 'array', items: { type: 'number' } },
        },
        required: ['name', 'datatype', 'shape', 'data'],
      },
    },
  },
  required: ['model_name', 'outputs'],
};

export function modelMetadata(contract: ModelContract): object {
  return {
    name: contract.name,
    versions: [contract.version],
    platform: 'onnxruntime_onnx',
    inputs: contract.features.map((f) => ({
      name: f.name,
      datatype: f.type === 'number' ? 'FP32' : 'BYTES',
      shape: f.rank === 2 ? [-1, 1] : [-1],
    })),
    outputs: contract.outputs.map((o) => ({ name: o.name, datatype: 'FP32', shape: [-1, o.width] })),
  };
}

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}
interface InferRequest {
  id?: string;
  inputs: InferInput[];
  outputs?: { name: string }[];
}

export interface V2Request {
  readonly id: string | undefined;
  readonly batch: ColumnBatch;
  readonly outputs: readonly string[];
}

export class V2Codec {
  // The first structural problem is enough, and stops ajv from collecting one
  // error per item of a huge array.
  private readonly validate = new Ajv2020({ allErrors: false, strict: true }).compile(inferRequestSchema);
  /** The model metadata document (GET /v2/models/{name}). */
  readonly metadata: object;

  constructor(
    private readonly contract: ModelContract,
    private readonly validators: RequestValidators,
    private readonly maxBatch: number,
  ) {
    this.metadata = modelMetadata(contract);
  }

  /**
   * Checks a parsed body against the model's inputs and returns its columns.
   * Every value goes through the validators /score uses (float32 range, length
   * of a category, null only where the model accepts it), so both protocols
   * refuse the same values with the same reasons.
   */
  decode(body: unknown): V2Request {
    if (!this.validate(body)) {
      const problems: RequestProblem[] = (this.validate.errors ?? []).map((e) => ({
        ...(e.instancePath === '' ? {} : { field: e.instancePath }),
        reason: e.message ?? 'invalid',
      }));
      throw new HttpError(
        400,
        'the body is not a v2 inference request ({"inputs": [{name, shape, datatype, data}]})',
        problems,
      );
    }
    const request = body as InferRequest;
    const { features, outputs: modelOutputs } = this.contract;
    const problems: RequestProblem[] = [];
    if (request.inputs.length > features.length) {
      throw new HttpError(
        400,
        `the request has ${request.inputs.length} input tensors but the model has ${features.length} inputs; send one tensor per input (GET /v2/models/${this.contract.name} lists them)`,
      );
    }
    if (request.outputs !== undefined && request.outputs.length > modelOutputs.length) {
      throw new HttpError(
        400,
        `the request asks for ${request.outputs.length} outputs but the model has ${modelOutputs.length} (${modelOutputs.map((o) => o.name).join(', ')}); name each at most once`,
      );
    }
    const given = new Map<string, InferInput>();
    for (const input of request.inputs) {
      if (given.has(input.name)) problems.push({ field: input.name, reason: 'input given twice' });
      given.set(input.name, input);
      if (!features.some((f) => f.name === input.name)) {
        problems.push({ field: input.name, reason: 'unknown input: the model has no input of this name' });
      }
    }
    let n: number | undefined;
    const columns: unknown[][] = [];
    for (let f = 0; f < features.length; f++) {
      const feature = features[f] as FeatureSpec;
      const input = given.get(feature.name);
      if (input === undefined) {
        problems.push({ field: feature.name, reason: 'missing input' });
        continue;
      }
      const wantBytes = feature.type === 'string';
      if (wantBytes ? input.datatype !== 'BYTES' : !NUMBER_TYPES.has(input.datatype)) {
        problems.push({
          field: feature.name,
          reason: `wrong datatype ${input.datatype}: expected ${wantBytes ? 'BYTES' : 'FP32'}`,
        });
        continue;
      }
      const rows = input.shape[0] as number;
      if (input.shape.length === 2 && input.shape[1] !== 1) {
        problems.push({
          field: feature.name,
          reason: `shape [${input.shape.join(', ')}]: expected [N, 1] or [N]`,
        });
        continue;
      }
      if (rows > this.maxBatch) {
        throw new HttpError(
          413,
          `batch of ${rows} rows is over the limit of ${this.maxBatch}; split the request`,
        );
      }
      if (input.data.length !== rows) {
        problems.push({
          field: feature.name,
          reason: `shape says ${rows} values but data holds ${input.data.length}`,
        });
        continue;
      }
      if (n !== undefined && rows !== n) {
        problems.push({ field: feature.name, reason: `has ${rows} rows but other inputs have ${n}` });
        continue;
      }
      n = rows;
      const column = this.column(f, wantBytes, input.data, problems);
      if (column !== undefined) columns.push(column);
    }
    const outputs = request.outputs?.map((o) => o.name) ?? modelOutputs.map((o) => o.name);
    const asked = new Set<string>();
    for (const name of outputs) {
      if (asked.has(name)) problems.push({ field: name, reason: 'output asked for twice' });
      asked.add(name);
      if (!modelOutputs.some((o) => o.name === name)) {
        problems.push({ field: name, reason: 'unknown output: the model has no output of this name' });
      }
    }
    if (n === 0) problems.push({ reason: 'the inputs hold no rows; send at least one' });
    if (problems.length > 0) {
      throw new HttpError(
        400,
        'the inference request does not match the model inputs',
        capProblems(problems),
      );
    }
    return {
      id: request.id,
      outputs,
      batch: { n: n as number, value: (f, r) => (columns[f] as unknown[])[r] },
    };
  }

  /**
   * The values of one input, flat. Data may be flat or nested as [N, 1]
   * ([[v], [v]]); anything deeper is refused without walking into it. Reports
   * the first bad value of the input.
   */
  private column(
    f: number,
    wantBytes: boolean,
    data: readonly unknown[],
    problems: RequestProblem[],
  ): unknown[] | undefined {
    const feature = this.contract.features[f] as FeatureSpec;
    const column = new Array<unknown>(data.length);
    for (let r = 0; r < data.length; r++) {
      let v = data[r];
      if (Array.isArray(v)) {
        if (v.length !== 1 || Array.isArray(v[0]) || (typeof v[0] === 'object' && v[0] !== null)) {
          problems.push({
            index: r,
            field: feature.name,
            reason: 'data must be flat ([v, ...]) or nested as [N, 1] ([[v], ...])',
          });
          return undefined;
        }
        v = v[0];
      }
      // v2 carries categories as BYTES (strings) and numbers as numbers; the
      // value itself is then checked as /score checks it.
      const typed = v === null || (wantBytes ? typeof v === 'string' : typeof v === 'number');
      if (!typed || !this.validators.value(f, v)) {
        problems.push({
          index: r,
          field: feature.name,
          reason: typed
            ? this.validators.describeValue(f, v)
            : `wrong type: expected ${wantBytes ? 'a string' : 'a number'}, got ${describeValue(v)}`,
        });
        return undefined;
      }
      column[r] = v;
    }
    return column;
  }

  encode(request: V2Request, outputs: Outputs): object {
    const n = request.batch.n;
    return {
      model_name: this.contract.name,
      model_version: this.contract.version,
      ...(request.id === undefined ? {} : { id: request.id }),
      outputs: request.outputs.map((name) => ({
        name,
        datatype: 'FP32',
        shape: [n, this.contract.outputs.find((o) => o.name === name)?.width ?? 1],
        data: Array.from(outputs[name] as Float32Array),
      })),
    };
  }
}
