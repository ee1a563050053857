import { strict as assert } from 'node:assert';
import pino from 'pino';
import { Workers } from '../../../src/manager/workers';
import { WorkQueue } from '../../../src/queue';

const log = pino({ level: 'silent' });

function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > end) return reject(new Error('condition not reached'));
      setTimeout(tick, 2);
    };
    tick();
  });
}

describe('manager: workers', () => {
  it('retries a failing key with exponential back-off and forgets the failures on success', async () => {
    const q = new WorkQueue({ baseDelayMs: 20, maxDelayMs: 1000 });
    const calls: number[] = [];
    const results: string[] = [];
    const w = new Workers(
      q,
      async () => {
        calls.push(Date.now());
        if (calls.length <= 3) throw new Error('API server said no');
        return {};
      },
      log,
      { onResult: (r) => results.push(r) },
    );
    w.start(2);
    q.add('ns/a');
    await until(() => calls.length === 4);
    assert.deepEqual(results.slice(0, 4), ['error', 'error', 'error', 'success']);
    const gaps = calls.slice(1).map((t, i) => t - calls[i]!);
    // 20, 40, 80 ms (timers fire no earlier than asked).
    assert.ok(gaps[0]! >= 19 && gaps[1]! >= 39 && gaps[2]! >= 79, `gaps ${gaps.join(',')}`);
    assert.ok(gaps[2]! > gaps[0]!, 'the delay grows');
    assert.equal(q.retries('ns/a'), 0, 'success resets the back-off');
    q.shutDown();
    await w.drain(1000);
  });

  it('requeues after the delay the reconcile asks for without counting a failure', async () => {
    const q = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 1000 });
    let n = 0;
    const w = new Workers(q, async () => (++n === 1 ? { requeueAfterMs: 30 } : {}), log);
    w.start(1);
    const t0 = Date.now();
    q.add('ns/a');
    await until(() => n === 2);
    assert.ok(Date.now() - t0 >= 29);
    assert.equal(q.retries('ns/a'), 0);
    q.shutDown();
    await w.drain(1000);
  });

  it('retry: true uses the back-off (a refused model is tried again)', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 1000 });
    let n = 0;
    const w = new Workers(q, async () => (++n < 3 ? { retry: true } : {}), log);
    w.start(1);
    q.add('ns/a');
    await until(() => n === 3);
    assert.equal(q.retries('ns/a'), 0);
    q.shutDown();
    await w.drain(1000);
  });

  it('never runs one key on two workers at once', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    let inFlight = 0;
    let maxInFlight = 0;
    let runs = 0;
    const w = new Workers(
      q,
      async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        runs++;
        return {};
      },
      log,
    );
    w.start(4);
    q.add('ns/a');
    await new Promise((r) => setTimeout(r, 5));
    q.add('ns/a'); // arrives while running: queued again afterwards
    q.add('ns/a');
    await until(() => runs === 2);
    assert.equal(maxInFlight, 1);
    q.shutDown();
    await w.drain(1000);
  });

  it('a watched change overtakes a burst of resyncs whose reconciles never wait for I/O', async () => {
    // 400 resync keys whose reconcile only burns CPU (a resync at rest reads the
    // caches and writes nothing), then a change arrives from a timer (as a
    // watch event arrives from a socket). The change is reconciled after at
    // most one more resync per worker, not after the burst.
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    const order: string[] = [];
    const burn = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        /* CPU only */
      }
    };
    const w = new Workers(
      q,
      async (key) => {
        burn(0.5);
        order.push(key);
        return {};
      },
      log,
    );
    for (let i = 0; i < 400; i++) q.addLow(`ns/r${i}`);
    let resyncsBeforeChange = -1;
    setTimeout(() => {
      resyncsBeforeChange = order.length;
      q.add('ns/changed');
    }, 1);
    w.start(4);
    await until(() => order.length === 401, 10_000);
    assert.ok(resyncsBeforeChange >= 0 && resyncsBeforeChange < 400, 'the change arrived during the burst');
    const at = order.indexOf('ns/changed');
    assert.ok(
      at - resyncsBeforeChange <= 4,
      `the change waited behind ${at - resyncsBeforeChange} resyncs after it arrived (at most one per worker)`,
    );
    assert.equal(new Set(order).size, 401, 'every key reconciled exactly once');
    q.shutDown();
    await w.drain(1000);
  });

  it('under random events, resyncs and slow reconciles: no key on two workers at once, no change lost', async () => {
    const q = new WorkQueue({ baseDelayMs: 1, maxDelayMs: 5 });
    const keys = Array.from({ length: 20 }, (_, i) => `ns/k${i}`);
    const inFlight = new Set<string>();
    const lastAdded = new Map<string, number>();
    const lastStarted = new Map<string, number>();
    let clock = 0;
    let overlap = '';
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const w = new Workers(
      q,
      async (key) => {
        if (inFlight.has(key)) overlap = key;
        inFlight.add(key);
        lastStarted.set(key, ++clock);
        const r = rnd();
        if (r < 0.3) await new Promise((res) => setTimeout(res, 1 + Math.floor(r * 10)));
        else if (r < 0.6) await new Promise((res) => setImmediate(res));
        inFlight.delete(key);
        return r > 0.95 ? { retry: true } : {};
      },
      log,
    );
    w.start(4);
    for (let round = 0; round < 60; round++) {
      for (let j = 0; j < 10; j++) {
        const key = keys[Math.floor(rnd() * keys.length)]!;
        lastAdded.set(key, ++clock);
        if (rnd() < 0.5) q.add(key);
        else q.addLow(key);
      }
      await new Promise((res) => setTimeout(res, rnd() < 0.5 ? 0 : 2));
    }
    // Every key added is reconciled after its last add (a change is never lost).
    await until(
      () => [...lastAdded].every(([k, t]) => (lastStarted.get(k) ?? 0) > t) && inFlight.size === 0,
      10_000,
    );
    assert.equal(overlap, '', `key ${overlap} ran on two workers at once`);
    q.shutDown();
    await w.drain(1000);
  });

  it('drain lets an in-flight reconcile finish after the queue is shut down', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    let finished = false;
    const w = new Workers(
      q,
      async () => {
        await new Promise((r) => setTimeout(r, 50));
        finished = true;
        return {};
      },
      log,
    );
    w.start(1);
    q.add('ns/a');
    await new Promise((r) => setTimeout(r, 5));
    q.shutDown();
    await w.drain(2000);
    assert.ok(finished);
  });
});
