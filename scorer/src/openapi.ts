// The OpenAPI 3.1 document of the scorer, built from the served model's contract:
// the request schemas are the very objects the request validators were compiled from.

import type { ModelContract, OutputSpec } from './model-contract';
import type { RequestSchemas } from './request-schema';
import { inferRequestSchema, inferResponseSchema, modelMetadataSchema } from './v2';

export function buildOpenApi(
  contract: ModelContract,
  schemas: RequestSchemas,
  authRequired: boolean,
): object {
  const outputProps: Record<string, object> = {};
  // An output of K values per record ([N, K], e.g. multiclass probabilities) is an array of K
  // numbers, each titled with its label (class_names) when the model has them.
  for (const o of contract.outputs) outputProps[o.name] = outputSchema(o);
  const outputNames = contract.outputs.map((o) => o.name);
  const primary = contract.outputs.find((o) => o.name === contract.primaryOutput);
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const json = (schema: object, description: string) => ({
    description,
    content: { 'application/json': { schema } },
  });
  const errors = {
    '400': json(ref('Error'), 'The request is malformed; details name each bad record and field'),
    ...(authRequired ? { '401': json(ref('Error'), 'API key missing or not accepted') } : {}),
    '413': json(ref('Error'), 'Body or batch over the limit'),
    '415': json(ref('Error'), 'Body is not JSON'),
    '503': json(ref('Error'), 'Model not loaded yet, self-test failed, or shutting down'),
  };
  const security = authRequired ? [{ apiKey: [] }, { bearer: [] }] : [];
  const modelName = {
    name: 'name',
    in: 'path',
    required: true,
    schema: { type: 'string', const: contract.name },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: `Scoring service for model ${contract.name}`,
      version: contract.version,
      description:
        `Scores records with the ONNX model ${contract.name} ${contract.version}. ` +
        `Positional rows follow feature_order; the positional answer is ${contract.primaryOutput}.`,
    },
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
      schemas: {
        ScoreDataRequest: schemas.dataRequest,
        ScoreRecordsRequest: schemas.recordsRequest,
        ScoreDataResponse: {
          type: 'object',
          properties: {
            result: {
              type: 'array',
              items: primary !== undefined && primary.width > 1 ? outputSchema(primary) : { type: 'number' },
              description: contract.primaryOutput,
            },
          },
          required: ['result'],
          additionalProperties: false,
        },
        ScoreRecordsResponse: {
          type: 'object',
          properties: {
            model: {
              type: 'object',
              properties: { name: { const: contract.name }, version: { const: contract.version } },
              required: ['name', 'version'],
            },
            predictions: {
              type: 'array',
              items: {
                type: 'object',
                properties: outputProps,
                required: outputNames,
                additionalProperties: false,
              },
            },
          },
          required: ['model', 'predictions'],
          additionalProperties: false,
        },
        Error: {
          type: 'object',
          properties: {
            error: { type: 'string' },
            details: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  index: { type: 'integer', description: 'record or row index in the request' },
                  position: { type: 'integer', description: 'position in a positional row' },
                  field: { type: 'string' },
                  reason: { type: 'string' },
                },
                required: ['reason'],
                additionalProperties: false,
              },
            },
          },
          required: ['error'],
          additionalProperties: false,
        },
        Health: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] },
        Ready: {
          type: 'object',
          properties: {
            status: { enum: ['ready', 'not ready'] },
            reason: { type: 'string' },
            model: { type: 'string' },
            version: { type: 'string' },
          },
          required: ['status'],
        },
        ModelCard: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            version: { type: 'string' },
            sha256: { type: 'string' },
            metadata: { type: 'object' },
            card: {},
          },
          required: ['name', 'version', 'metadata'],
        },
        V2InferRequest: inferRequestSchema,
        V2InferResponse: inferResponseSchema,
        V2ModelMetadata: modelMetadataSchema,
        V2Live: { type: 'object', properties: { live: { type: 'boolean' } }, required: ['live'] },
        V2Ready: { type: 'object', properties: { ready: { type: 'boolean' } }, required: ['ready'] },
      },
    },
    paths: {
      '/score': {
        post: {
          summary: `Score records (answer: ${contract.primaryOutput} per row, or every output per record)`,
          security,
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { oneOf: [ref('ScoreDataRequest'), ref('ScoreRecordsRequest')] },
              },
            },
          },
          responses: {
            '200': json(
              { oneOf: [ref('ScoreDataResponse'), ref('ScoreRecordsResponse')] },
              '{"result": [...]} for {"data": ...}; {"model", "predictions"} for {"records": ...}',
            ),
            ...errors,
          },
        },
      },
      '/healthz': { get: { summary: 'Liveness', responses: { '200': json(ref('Health'), 'alive') } } },
      '/readyz': {
        get: {
          summary: 'Readiness: model loaded and self-tested',
          responses: { '200': json(ref('Ready'), 'ready'), '503': json(ref('Ready'), 'not ready') },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          responses: { '200': { description: 'text exposition format', content: { 'text/plain': {} } } },
        },
      },
      '/model': {
        get: {
          summary: 'Model card: metadata and the model-card JSON published beside the model',
          security,
          responses: { '200': json(ref('ModelCard'), 'model card'), ...errors },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document',
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': {} } } },
        },
      },
      '/v2': {
        get: {
          summary: 'Server metadata (Open Inference Protocol)',
          responses: {
            '200': { description: 'name, version, extensions', content: { 'application/json': {} } },
          },
        },
      },
      '/v2/health/live': { get: { responses: { '200': json(ref('V2Live'), 'live') } } },
      '/v2/health/ready': {
        get: {
          responses: { '200': json(ref('V2Ready'), 'ready'), '503': json(ref('V2Ready'), 'not ready') },
        },
      },
      '/v2/models/{name}': {
        get: {
          summary: 'Model metadata (Open Inference Protocol)',
          security,
          parameters: [modelName],
          responses: {
            '200': json(ref('V2ModelMetadata'), 'metadata'),
            '404': json(ref('Error'), 'unknown model'),
            ...errors,
          },
        },
      },
      '/v2/models/{name}/ready': {
        get: {
          summary: 'Model readiness (Open Inference Protocol)',
          security,
          parameters: [modelName],
          responses: {
            '200': json(
              { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } } },
              'readiness',
            ),
            '404': json(ref('Error'), 'unknown model'),
            ...errors,
          },
        },
      },
      '/v2/models/{name}/infer': {
        post: {
          summary: 'Inference (Open Inference Protocol): FP32 and BYTES tensors of shape [N, 1]',
          security,
          parameters: [modelName],
          requestBody: { required: true, content: { 'application/json': { schema: ref('V2InferRequest') } } },
          responses: {
            '200': json(ref('V2InferResponse'), 'outputs'),
            '404': json(ref('Error'), 'unknown model'),
            ...errors,
          },
        },
      },
    },
  };
}

function outputSchema(output: OutputSpec): object {
  if (output.width === 1) return { type: 'number', description: output.description };
  const labels = output.labels;
  return {
    type: 'array',
    description:
      `${output.description ? `${output.description}; ` : ''}${output.width} numbers per record` +
      (labels === undefined ? '' : `, in the order ${labels.join(', ')}`),
    ...(labels === undefined
      ? { items: { type: 'number' } }
      : { prefixItems: labels.map((title) => ({ type: 'number', title })) }),
    minItems: output.width,
    maxItems: output.width,
  };
}
