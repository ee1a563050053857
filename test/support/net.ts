/** Network helpers for tests. */
import { createServer, type AddressInfo } from 'node:net';

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
