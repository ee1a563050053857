// Open Inference Protocol (v2, as spoken by KServe and Triton): model metadata and
// the JSON inference request. Numbers travel as FP32 tensors, categories as BYTES.

import Ajv2020 from 'ajv/dist/2020';
import { HttpError } from './http-errors';
import type { ModelContract } from './model-contract';
import type { ColumnBatch, Outputs } from './model-runtime';
import type { RequestProblem } from './request-schema';

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
    id: { type: 'string' },
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
    outputs: contract.outputs.map((o) => ({ name: o.name, datatype: 'FP32', shape: [-1, 1] })),
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
  private readonly validate = new Ajv2020({ allErrors: true, strict: true }).compile(inferRequestSchema);
  /** The model metadata document (GET /v2/models/{name}). */
  readonly metadata: object;

  constructor(
    private readonly contract: ModelContract,
    private readonly maxBatch: number,
  ) {
    this.metadata = modelMetadata(contract);
  }

  /** Checks a parsed body against the model's inputs and returns its columns. */
  decode(body: unknown): V2Request {
    if (!this.validate(body)) {
      const problems: RequestProblem[] = (this.validate.errors ?? []).slice(0, 20).map((e) => ({
        field: e.instancePath === '' ? undefined : e.instancePath,
        reason: e.message ?? 'invalid',
      }));
      throw new HttpError(
        400,
        'the body is not a v2 inference request ({"inputs": [{name, shape, datatype, data}]})',
        problems,
      );
    }
    const request = body as InferRequest;
    const problems: RequestProblem[] = [];
    const given = new Map<string, InferInput>();
    for (const input of request.inputs) {
      if (given.has(input.name)) problems.push({ field: input.name, reason: 'input given twice' });
      given.set(input.name, input);
      if (!this.contract.features.some((f) => f.name === input.name)) {
        problems.push({ field: input.name, reason: 'unknown input: the model has no input of this name' });
      }
    }
    let n: number | undefined;
    const columns: unknown[][] = [];
    for (const feature of this.contract.features) {
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
      const data = input.data.flat();
      if (data.length !== rows) {
        problems.push({
          field: feature.name,
          reason: `shape says ${rows} values but data holds ${data.length}`,
        });
        continue;
      }
      if (n !== undefined && rows !== n) {
        problems.push({ field: feature.name, reason: `has ${rows} rows but other inputs have ${n}` });
        continue;
      }
      n = rows;
      const bad = data.findIndex((v) =>
        v === null ? !feature.nullable : wantBytes ? typeof v !== 'string' : typeof v !== 'number',
      );
      if (bad >= 0) {
        const v = data[bad];
        problems.push({
          index: bad,
          field: feature.name,
          reason:
            v === null
              ? 'missing value: this input does not accept null'
              : `wrong type: expected ${wantBytes ? 'a string' : 'a number'}, got ${JSON.stringify(v)?.slice(0, 40)}`,
        });
        continue;
      }
      columns.push(data);
    }
    const outputs = request.outputs?.map((o) => o.name) ?? this.contract.outputs.map((o) => o.name);
    for (const name of outputs) {
      if (!this.contract.outputs.some((o) => o.name === name)) {
        problems.push({ field: name, reason: 'unknown output: the model has no output of this name' });
      }
    }
    if (n === 0) problems.push({ reason: 'the inputs hold no rows; send at least one' });
    if (problems.length > 0)
      throw new HttpError(400, 'the inference request does not match the model inputs', problems);
    return {
      id: request.id,
      outputs,
      batch: { n: n as number, value: (f, r) => (columns[f] as unknown[])[r] },
    };
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
        shape: [n, 1],
        data: Array.from(outputs[name] as Float32Array),
      })),
    };
  }
}
