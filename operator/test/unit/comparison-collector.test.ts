import { strict as assert } from 'node:assert';
import pino from 'pino';
import type { FnolModelStatusCanaryComparison } from '@fnol/api';
import { ComparisonCollector, type ComparisonTarget } from '../../src/comparison-collector';

const log = pino({ level: 'silent' });

function figures(requests: number, at = '2026-12-01T10:00:00.000Z'): FnolModelStatusCanaryComparison {
  return {
    requests,
    dropped: 0,
    candidateErrors: 0,
    candidateErrorRate: 0,
    outputs: [],
    pods: 1,
    updatedAt: at,
  };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await tick(5);
  }
}

describe('canary comparison collector: reads off the workers', () => {
  let collector: ComparisonCollector;
  afterEach(() => collector?.close());

  it('reads at once when a FnolModel starts mirroring, queues it, and answers the figures after', async () => {
    const reads: ComparisonTarget[] = [];
    const changed: string[] = [];
    collector = new ComparisonCollector({
      periodMs: 60_000,
      read: async (t) => {
        reads.push(t);
        return figures(10);
      },
      onChange: (key) => changed.push(key),
      log,
    });
    assert.equal(collector.follow('claims/fnol', '1.1.0'), undefined, 'nothing is read in the reconcile');
    await until('the first read is queued', () => changed.length === 1);
    assert.deepEqual(reads, [{ namespace: 'claims', name: 'fnol', version: '1.1.0' }]);
    assert.deepEqual(changed, ['claims/fnol']);
    assert.equal(collector.follow('claims/fnol', '1.1.0')?.requests, 10);
    assert.equal(collector.size, 1);
  });

  it('reads every period and queues only when the figures changed, not their time stamp', async () => {
    let requests = 5;
    let n = 0;
    const changed: string[] = [];
    collector = new ComparisonCollector({
      periodMs: 10,
      read: async () => {
        n++;
        return figures(requests, new Date(Date.now()).toISOString());
      },
      onChange: (key) => changed.push(key),
      log,
    });
    collector.follow('claims/fnol', '1.1.0');
    await until('five reads', () => n >= 5);
    assert.equal(changed.length, 1, 'the same figures read again queue nothing');
    requests = 6;
    await until('the change is seen', () => changed.length === 2);
    assert.equal(collector.follow('claims/fnol', '1.1.0')?.requests, 6);
  });

  it('a failed read keeps the previous figures and is tried again next period', async () => {
    let fail = false;
    let n = 0;
    collector = new ComparisonCollector({
      periodMs: 10,
      read: async () => {
        n++;
        if (fail) throw new Error('connection refused');
        return figures(7);
      },
      onChange: () => undefined,
      log,
    });
    collector.follow('claims/fnol', '1.1.0');
    await until('the first figures', () => collector.follow('claims/fnol', '1.1.0') !== undefined);
    fail = true;
    const before = n;
    await until('two failed reads', () => n >= before + 2);
    assert.equal(collector.follow('claims/fnol', '1.1.0')?.requests, 7);
  });

  it('another candidate version forgets the old figures; a read of the old version that lands late is dropped', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    collector = new ComparisonCollector({
      periodMs: 60_000,
      read: async (t) => {
        if (t.version === '1.1.0') await held;
        return figures(t.version === '1.1.0' ? 1 : 2);
      },
      onChange: () => undefined,
      log,
    });
    collector.follow('claims/fnol', '1.1.0');
    await tick(5);
    collector.follow('claims/fnol', '1.2.0');
    await until('1.2.0 is read', () => collector.follow('claims/fnol', '1.2.0') !== undefined);
    release();
    await tick(20);
    assert.equal(collector.follow('claims/fnol', '1.2.0')?.requests, 2);
  });

  it('stops reading a FnolModel that stopped mirroring, and everything on close', async () => {
    let n = 0;
    collector = new ComparisonCollector({
      periodMs: 10,
      read: async () => {
        n++;
        return figures(n);
      },
      onChange: () => undefined,
      log,
    });
    collector.follow('claims/a', '1.1.0');
    collector.follow('claims/b', '1.1.0');
    await until('both are read', () => n >= 2);
    assert.equal(collector.follow('claims/a', undefined), undefined);
    assert.equal(collector.size, 1);
    collector.close();
    const after = n;
    await tick(50);
    assert.equal(n, after, 'no read after close');
    assert.equal(collector.size, 0);
    assert.equal(collector.follow('claims/c', '1.1.0'), undefined);
    assert.equal(collector.size, 0, 'nothing is followed after close');
  });

  it('runs at most maxConcurrent reads at once over all FnolModels', async () => {
    let running = 0;
    let most = 0;
    let done = 0;
    collector = new ComparisonCollector({
      periodMs: 60_000,
      maxConcurrent: 2,
      read: async () => {
        running++;
        most = Math.max(most, running);
        await tick(20);
        running--;
        done++;
        return figures(1);
      },
      onChange: () => undefined,
      log,
    });
    for (let i = 0; i < 6; i++) collector.follow(`claims/m${i}`, '1.1.0');
    await until('six reads', () => done === 6);
    assert.equal(most, 2);
  });
});
