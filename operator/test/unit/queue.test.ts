import { strict as assert } from 'node:assert';
import { WorkQueue } from '../../src/queue';

describe('work queue', () => {
  it('de-duplicates keys waiting in the queue', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    assert.equal(q.depth, 2);
    assert.equal(await q.get(), 'ns/a');
    assert.equal(await q.get(), 'ns/b');
    q.shutDown();
  });

  it('never hands a key being processed to a second worker; requeues it afterwards', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    q.add('ns/a');
    const k = await q.get();
    q.add('ns/a'); // event while processing
    assert.equal(q.depth, 0);
    q.done(k!);
    assert.equal(q.depth, 1);
    assert.equal(await q.get(), 'ns/a');
    q.shutDown();
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    const p = q.get();
    q.add('ns/x');
    assert.equal(await p, 'ns/x');
    q.shutDown();
  });

  it('backs off exponentially up to the cap and forgets on success', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
    const delays = [1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('ns/a'));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    q.forget('ns/a');
    assert.equal(q.retries('ns/a'), 0);
    q.shutDown();
  });

  it('adds a rate-limited key after its delay', async () => {
    const q = new WorkQueue({ baseDelayMs: 20, maxDelayMs: 100 });
    q.addRateLimited('ns/a');
    assert.equal(q.depth, 0);
    const t0 = Date.now();
    assert.equal(await q.get(), 'ns/a');
    assert.ok(Date.now() - t0 >= 15);
    q.shutDown();
  });

  it('serves resync keys only after event-driven ones, and promotes a resync key on an event', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    q.addLow('ns/r1');
    q.addLow('ns/r2');
    q.add('ns/e');
    q.add('ns/r2'); // an event for a key waiting as resync
    q.addLow('ns/e'); // already queued: no duplicate
    assert.equal(q.depth, 3);
    assert.equal(await q.get(), 'ns/e');
    assert.equal(await q.get(), 'ns/r2');
    assert.equal(await q.get(), 'ns/r1');
    assert.equal(q.depth, 0);
    q.shutDown();
  });

  it('reports how long each key waited, by priority (a resync key promoted by an event counts as an event)', async () => {
    const waits: Array<[string, number]> = [];
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100, onWait: (p, s) => waits.push([p, s]) });
    q.addLow('ns/r1');
    q.addLow('ns/r2');
    q.add('ns/e');
    q.add('ns/r2');
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 3; i++) await q.get();
    assert.deepEqual(
      waits.map(([p]) => p),
      ['event', 'event', 'resync'],
    );
    assert.ok(waits.every(([, s]) => s > 0));
    const p = q.get();
    q.add('ns/x'); // handed straight to the waiting worker
    await p;
    assert.deepEqual(waits[3], ['event', 0]);
    q.shutDown();
  });

  it('releases waiting workers on shut down', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    const p = q.get();
    q.shutDown();
    assert.equal(await p, undefined);
  });
});
