// The operations endpoints: liveness, readiness, Prometheus metrics, the model
// card and the OpenAPI document of the served model.

import { sendJson } from '../send-json';
import type { RouteDeps } from './deps';
import type { Route } from './table';

export function metaRoutes({ state, metrics, scoring }: RouteDeps): Route[] {
  return [
    {
      method: 'GET',
      paths: ['/healthz'],
      label: '/healthz',
      handler: (_req, res) => sendJson(res, 200, { status: 'alive' }),
    },
    {
      method: 'GET',
      paths: ['/readyz'],
      label: '/readyz',
      probe: true,
      handler: (_req, res) => {
        const model = state.model;
        if (state.ready && model !== undefined) {
          const { name, version } = model.runtime.contract;
          sendJson(res, 200, { status: 'ready', model: name, version });
        } else {
          sendJson(res, 503, { status: 'not ready', reason: state.notReadyReason });
        }
      },
    },
    {
      method: 'GET',
      paths: ['/metrics'],
      label: '/metrics',
      handler: async (_req, res) => {
        const guard = scoring.guard;
        metrics.ready.set(state.ready ? 1 : 0);
        metrics.inFlight.set(guard?.requestsInFlight ?? 0);
        metrics.inFlightBodyBytes.set(guard?.bodyBytesInFlight ?? 0);
        metrics.queuedRows.set(state.model?.runtime.pendingRows ?? 0);
        if (state.model !== undefined) scoring.served(); // sets scorer_model_info before the first score
        const text = await metrics.registry.metrics();
        res.writeHead(200, {
          'content-type': metrics.registry.contentType,
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      },
    },
    {
      method: 'GET',
      paths: ['/model'],
      label: '/model',
      auth: true,
      handler: (_req, res) => {
        const { model } = scoring.served();
        const contract = model.runtime.contract;
        sendJson(res, 200, {
          name: contract.name,
          version: contract.version,
          sha256: model.sha256,
          metadata: contract.metadata,
          card: model.card ?? null,
        });
      },
    },
    {
      method: 'GET',
      paths: ['/openapi.json'],
      label: '/openapi.json',
      handler: (_req, res) => sendJson(res, 200, scoring.served().openapi),
    },
  ];
}
