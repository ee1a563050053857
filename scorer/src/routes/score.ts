// POST /score: the original Azure ML contract ({"data": rows in feature_order}
// -> {"result": primary output}) and named records (every output per record).
// The hot path: served on plain node:http objects, before express.

import type { ServerResponse } from 'node:http';
import { HttpError } from '../http-errors';
import { outputValue, outputValues, type OutputSpec, type OutputValue } from '../model-contract';
import { sendJson } from '../send-json';
import type { RouteDeps } from './deps';
import type { Route, RouteRequest } from './table';

/** The records counter's label sets of the two forms, made once. */
const DATA_FORM = Object.freeze({ form: 'data' });
const RECORDS_FORM = Object.freeze({ form: 'records' });

export function scoreRoutes({ scoring, metrics, limits, shadow, payloadLog }: RouteDeps): Route[] {
  const score = async (req: RouteRequest, res: ServerResponse): Promise<void> => {
    const v = scoring.served();
    const [body, pending] = await scoring.receive(req, res, v);
    const runtime = v.model.runtime;
    const { validators, contract } = runtime;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(
        400,
        'the body must be a JSON object with "data" (rows in feature_order) or "records"',
      );
    }
    const hasData = 'data' in body;
    if (hasData === 'records' in body) {
      throw new HttpError(
        400,
        hasData
          ? 'send either "data" or "records", not both'
          : `the body needs "data" (rows of ${contract.features.length} values in feature_order) or "records" (objects of feature: value)`,
      );
    }
    const list = (body as { data?: unknown; records?: unknown })[hasData ? 'data' : 'records'];
    if (Array.isArray(list) && list.length > limits.maxBatchRecords) {
      throw new HttpError(
        413,
        `batch of ${list.length} is over the limit of ${limits.maxBatchRecords} records; split the request`,
      );
    }
    if (hasData) {
      if (!validators.data(body)) {
        throw new HttpError(
          400,
          'the request does not match the model inputs',
          validators.describeData(body),
        );
      }
      const rows = list as unknown[][];
      const outputs = await scoring.runBatch(v, pending, rows.length, (cancel) =>
        runtime.scoreRows(rows, cancel),
      );
      if (outputs === undefined) return;
      metrics.records.inc(DATA_FORM, rows.length);
      scoring.observe(outputs, v);
      const primary = contract.outputs.find((o) => o.name === contract.primaryOutput) as OutputSpec;
      const values = outputs[primary.name] as Float32Array;
      sendJson(res, 200, { result: outputValues(primary, values) });
      payloadLog?.offer(res, v.model, '/score', 'data', rows.length, (f, r) => rows[r]?.[f], outputs, rows);
      if (pending.shadow !== undefined) {
        shadow?.offer(pending.shadow, req, res, '/score', {
          form: 'data',
          records: rows.length,
          outputs: [{ name: primary.name, width: primary.width, values }],
        });
      }
      return;
    }
    if (!validators.records(body)) {
      throw new HttpError(
        400,
        'the request does not match the model inputs',
        validators.describeRecords(body),
      );
    }
    const records = list as Record<string, unknown>[];
    const outputs = await scoring.runBatch(v, pending, records.length, (cancel) =>
      runtime.scoreRecords(records, cancel),
    );
    if (outputs === undefined) return;
    metrics.records.inc(RECORDS_FORM, records.length);
    scoring.observe(outputs, v);
    const specs = contract.outputs;
    const columns = specs.map((o) => outputs[o.name] as Float32Array);
    const predictions = new Array<Record<string, OutputValue>>(records.length);
    for (let r = 0; r < records.length; r++) {
      const prediction: Record<string, OutputValue> = {};
      for (let o = 0; o < specs.length; o++) {
        const spec = specs[o] as OutputSpec;
        prediction[spec.name] = outputValue(spec, columns[o] as Float32Array, r);
      }
      predictions[r] = prediction;
    }
    sendJson(res, 200, { model: { name: contract.name, version: contract.version }, predictions });
    const features = contract.features;
    payloadLog?.offer(
      res,
      v.model,
      '/score',
      'records',
      records.length,
      (f, r) => records[r]?.[features[f]?.name as string],
      outputs,
    );
    if (pending.shadow !== undefined) {
      shadow?.offer(pending.shadow, req, res, '/score', {
        form: 'records',
        records: records.length,
        outputs: specs.map((o, i) => ({ name: o.name, width: o.width, values: columns[i] as Float32Array })),
      });
    }
  };

  return [{ method: 'POST', paths: ['/score'], label: '/score', auth: true, direct: true, handler: score }];
}
