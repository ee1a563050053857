import { strict as assert } from 'node:assert';
import { Resync } from '../../../src/manager/resync';
import { WorkQueue } from '../../../src/queue';

describe('manager: resync', () => {
  it('queues every cached key each period, behind keys queued by events', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    const keys = ['ns/a', 'ns/b', 'ns/c'];
    const r = new Resync({ periodMs: 30, keys: () => keys, addLow: (k) => q.addLow(k) });
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
