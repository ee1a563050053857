/** Network helpers for tests. */
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';

/** A TCP port free on `host` right now (the OS picks it; another process may take it later). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * A non-loopback IPv4 address of this machine for a test backend that the
 * cluster's EndpointSlices name (the API server refuses 127.0.0.0/8 there): the
 * real node's bridge (host-only) when present, else the first external interface.
 */
export function backendAddress(): string {
  const ifaces = os.networkInterfaces();
  const bridge = ifaces[process.env.FNOL_NODE_BRIDGE ?? 'fnol0']?.find((a) => a.family === 'IPv4');
  if (bridge) return bridge.address;
  for (const list of Object.values(ifaces)) {
    const a = list?.find((x) => x.family === 'IPv4' && !x.internal && !x.address.startsWith('169.254.'));
    if (a) return a.address;
  }
  throw new Error(
    'this machine has no non-loopback IPv4 address for the test backend (EndpointSlices may not name 127.0.0.0/8)',
  );
}
