/** /healthz (process alive), /readyz (configured and, when leading, watching) and /metrics. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperatorMetrics } from './metrics';

export interface HealthProbe {
  ready: () => boolean;
}

export function startHealthServer(
  metrics: OperatorMetrics,
  probe: HealthProbe,
  port: number,
  host: string,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ok = probe.ready();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'starting\n');
    } else if (path === '/metrics') {
      metrics.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text))
        .catch((err: Error) => res.writeHead(500).end(err.message));
    } else {
      res
        .writeHead(404, { 'Content-Type': 'text/plain' })
        .end('not found: try /healthz, /readyz or /metrics\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export function portOf(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
