import { strict as assert } from 'node:assert';
import { Resync } from '../../../src/manager/resync';
import { WorkQueue } from '../../../src/queue';

/** Records addLow calls grouped by the timer turn that made them. */
function batches(): { addLow: (k: string) => void; seen: string[][] } {
  const seen: string[][] = [];
  let open: string[] | undefined;
  return {
    seen,
    addLow: (k) => {
      if (!open) {
        open = [];
        seen.push(open);
        setImmediate(() => (open = undefined));
      }
      open.push(k);
    },
  };
}

describe('manager: resync', () => {
  it('queues every cached key each period, behind keys queued by events', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    const keys = ['ns/a', 'ns/b', 'ns/c'];
    const r = new Resync({ periodMs: 30, stepMs: 30, keys: () => keys, addLow: (k) => q.addLow(k) });
    r.start();
    await new Promise((res) => setTimeout(res, 45));
    q.add('ns/event');
    assert.equal(q.depth, 4);
    assert.equal(await q.get(), 'ns/event', 'an event-driven key goes first');
    const got = [await q.get(), await q.get(), await q.get()];
    assert.deepEqual(got.sort(), keys);
    for (const k of ['ns/event', ...keys]) q.done(k);
    // The timer fires again.
    await new Promise((res) => setTimeout(res, 40));
    assert.equal(q.depth, 3);
    r.stop();
    q.shutDown();
  });

  it('spreads a period over its steps: each key once per period, an even share per step', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `ns/m${i}`);
    const rec = batches();
    const r = new Resync({ periodMs: 100, stepMs: 10, keys: () => keys, addLow: rec.addLow });
    r.start();
    // Wait until two whole periods were queued (the first starts after one period).
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (rec.seen.flat().length >= 100) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    r.stop();
    const all = rec.seen.flat();
    assert.deepEqual(all.slice(0, 50).sort(), [...keys].sort(), 'the first period queues every key once');
    assert.deepEqual(all.slice(50, 100).sort(), [...keys].sort(), 'so does the second');
    assert.ok(rec.seen.length >= 20, `50 keys in 10 steps per period, got ${rec.seen.length} batches`);
    for (const b of rec.seen)
      assert.ok(b.length <= 5, `a step queued ${b.length} keys, more than its share of 5`);
  });

  it('queues a single key at the start of each period, not at its end', async () => {
    const ticks: number[] = [];
    const r: Resync = new Resync({
      periodMs: 100,
      stepMs: 10,
      keys: () => ['ns/only'],
      // The step count when the key is queued: 10 steps make a period.
      addLow: () => ticks.push((r as unknown as { tick: number }).tick),
    });
    r.start();
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (ticks.length >= 2) {
          clearInterval(t);
          resolve();
        }
      }, 2);
    });
    r.stop();
    assert.deepEqual(ticks.slice(0, 2), [10, 20], 'the first step of the second and third periods');
  });

  it('stops queueing once stopped', async () => {
    let n = 0;
    const r = new Resync({ periodMs: 10, keys: () => ['ns/a'], addLow: () => n++ });
    r.start();
    r.stop();
    await new Promise((res) => setTimeout(res, 40));
    assert.equal(n, 0);
    assert.equal(r.now(), 1);
    assert.equal(n, 1);
  });
});
