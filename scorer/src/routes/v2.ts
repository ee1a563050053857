// The Open Inference Protocol (v2, as spoken by KServe and Triton): server and
// model metadata, health, and inference. The codec is in ../v2.ts.

import { HttpError } from '../http-errors';
import type { ModelView } from '../scoring';
import { sendJson } from '../send-json';
import type { RouteDeps } from './deps';
import type { Route, RouteRequest } from './table';

export function v2Routes({ state, metrics, scoring, shadow, payloadLog }: RouteDeps): Route[] {
  /** The served model if the path names it (and its version, when given); 404 naming it otherwise. */
  const findModel = (req: RouteRequest): ModelView => {
    const v = scoring.served();
    const contract = v.model.runtime.contract;
    const { name, version } = (req.params ?? {}) as { name?: string; version?: string };
    if (name !== contract.name || (version !== undefined && version !== contract.version)) {
      throw new HttpError(
        404,
        `model "${name}"${version === undefined ? '' : ` version "${version}"`} not found; this server serves "${contract.name}" version "${contract.version}"`,
      );
    }
    return v;
  };

  return [
    {
      method: 'GET',
      paths: ['/v2'],
      label: '/v2',
      handler: (_req, res) => sendJson(res, 200, { name: 'onnx-scorer', version: '1', extensions: [] }),
    },
    {
      method: 'GET',
      paths: ['/v2/health/live'],
      label: '/v2/health/live',
      handler: (_req, res) => sendJson(res, 200, { live: true }),
    },
    {
      method: 'GET',
      paths: ['/v2/health/ready'],
      label: '/v2/health/ready',
      probe: true,
      handler: (_req, res) => sendJson(res, state.ready ? 200 : 503, { ready: state.ready }),
    },
    {
      method: 'GET',
      paths: ['/v2/models/:name', '/v2/models/:name/versions/:version'],
      label: '/v2/models/:name',
      auth: true,
      handler: (req, res) => sendJson(res, 200, findModel(req).v2.metadata),
    },
    {
      method: 'GET',
      paths: ['/v2/models/:name/ready', '/v2/models/:name/versions/:version/ready'],
      label: '/v2/models/:name/ready',
      auth: true,
      handler: (req, res) => {
        findModel(req);
        sendJson(res, 200, { name: req.params?.name, ready: state.ready });
      },
    },
    {
      method: 'POST',
      paths: ['/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer'],
      label: '/v2/models/:name/infer',
      auth: true,
      handler: async (req, res) => {
        const v = findModel(req);
        const [body, pending] = await scoring.receive(req, res, v);
        const request = v.v2.decode(body);
        const outputs = await scoring.runBatch(v, pending, request.batch.n, (cancel) =>
          v.model.runtime.run(request.batch, cancel),
        );
        if (outputs === undefined) return;
        metrics.records.labels('v2').inc(request.batch.n);
        scoring.observe(outputs, v);
        sendJson(res, 200, v.v2.encode(request, outputs));
        const { batch } = request;
        payloadLog?.offer(
          res,
          v.model,
          '/v2/models/:name/infer',
          'v2',
          batch.n,
          (f, r) => batch.value(f, r),
          outputs,
        );
        if (pending.shadow !== undefined) {
          const { name, outputs: specs } = v.model.runtime.contract;
          // Unversioned: the candidate serves another version of the same model.
          shadow?.offer(pending.shadow, req, res, `/v2/models/${encodeURIComponent(name)}/infer`, {
            form: 'v2',
            records: request.batch.n,
            outputs: request.outputs.map((output) => ({
              name: output,
              width: specs.find((o) => o.name === output)?.width ?? 1,
              values: outputs[output] as Float32Array,
            })),
          });
        }
      },
    },
  ];
}
