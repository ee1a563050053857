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
