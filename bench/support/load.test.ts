// The shared load generators against servers that close connections: every
// answer must be counted once, as served or as an error, never lost.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closedLoop, median, openLoop, type Target } from './load';

interface Counting {
  server: Server;
  target: Target;
  /** Requests the server received. */
  received(): number;
}

/** A server like gunicorn's sync worker: every answer carries Connection: close. */
async function serve(
  handler: (n: number, res: import('node:http').ServerResponse) => void,
): Promise<Counting> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(++n, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    target: {
      urls: [`http://127.0.0.1:${port}`],
      accept: (s, body) => s === 200 && body === '{"result": [1]}',
    },
    received: () => n,
  };
}

const closeAfter = (_n: number, res: import('node:http').ServerResponse) => {
  res.writeHead(200, { connection: 'close', 'content-type': 'application/json' }).end('{"result": [1]}');
};

describe('bench load generators', () => {
  let s: Counting | undefined;
  afterEach(() => {
    s?.server.closeAllConnections();
    s?.server.close();
  });

  it('closed loop: a server closing every connection has each answer counted once', async () => {
    s = await serve(closeAfter);
    const m = await closedLoop(s.target, '{"data": [[1]]}', 8, 1);
    assert.equal(m.errors, 0);
    assert.ok(m.count >= 8, `only ${m.count} answers`);
    assert.equal(m.count, s.received());
  });

  it('open loop: a server closing every connection has each answer counted once', async () => {
    s = await serve(closeAfter);
    const m = await openLoop(s.target, '{"data": [[1]]}', 200, 1);
    assert.equal(m.count + m.errors, 200);
    assert.equal(m.errors, 0);
    assert.equal(m.count, s.received());
  });

  it('open loop: resets, wrong answers and answers that never come are counted as errors', async () => {
    s = await serve((n, res) => {
      if (n % 4 === 1)
        res.socket?.destroy(); // reset without an answer
      else if (n % 4 === 2) res.writeHead(200, { connection: 'close' }).end('{"error": "bad"}');
      else if (n % 4 === 3)
        return; // never answered
      else closeAfter(n, res);
    });
    const m = await openLoop(s.target, '{"data": [[1]]}', 100, 1, 2);
    assert.equal(s.received(), 100);
    assert.equal(m.count, 25);
    assert.equal(m.errors, 75);
  });

  it('median: the middle value, the mean of the two middle ones for an even count, NaN for none', () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.ok(Number.isNaN(median([])));
    const values = [3, 1, 2];
    median(values);
    assert.deepEqual(values, [3, 1, 2], 'median sorted its argument in place');
  });
});
