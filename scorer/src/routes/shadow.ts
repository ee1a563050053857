// GET /shadow: the running comparison of the mirrored copies, for the operator
// (status.canary.comparison). Served on the pod port only: the Ingress and the
// HTTPRoute publish the scoring paths, not this one.

import { sendJson } from '../send-json';
import type { RouteDeps } from './deps';
import type { Route } from './table';

export function shadowRoutes({ shadow }: RouteDeps): Route[] {
  return [
    {
      method: 'GET',
      paths: ['/shadow'],
      label: '/shadow',
      handler: (_req, res) => sendJson(res, 200, shadow?.status() ?? { enabled: false }),
    },
  ];
}
