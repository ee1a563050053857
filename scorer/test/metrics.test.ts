import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { CountedCounter, CountedHistogram } from '../src/metrics';

/** The exposition text of a registry. */
const samples = async (registry: Registry): Promise<string> => await registry.metrics();

describe('metrics counted directly', function () {
  it('print what prom-client prints for the same histogram observations (bounds, negatives, two series), and refuse what it refuses', async function () {
    const buckets = [0.001, 0.01, 0.1, 1];
    const values = [0, 0.001, 0.0010001, 0.05, 1, 1.5, -3, 1e300, 0.1];
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Histogram({
      name: 'h',
      help: 'a histogram',
      labelNames: ['route'],
      buckets,
      registers: [theirs],
    });
    const counted = new CountedHistogram('h', 'a histogram', 'route', buckets, ours);
    for (const [route, list] of [
      ['/a', values],
      ['/b', values.slice(0, 4)],
    ] as const) {
      const series = counted.of(route);
      for (const v of list) {
        reference.observe({ route }, v);
        counted.observe(series, v);
      }
    }
    assert.equal(await samples(ours), await samples(theirs));
    for (const bad of [NaN, Infinity, -Infinity]) {
      assert.throws(() => reference.observe({ route: '/a' }, bad), TypeError);
      assert.throws(() => counted.observe(counted.of('/a'), bad), TypeError);
    }
    assert.equal(await samples(ours), await samples(theirs));
  });

  it('print what prom-client prints for the same counter increments, series in the order first counted', async function () {
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Counter({
      name: 'c_total',
      help: 'a counter',
      labelNames: ['route', 'method', 'status'],
      registers: [theirs],
    });
    const counted = new CountedCounter('c_total', 'a counter', ['route', 'method', 'status'], ours);
    for (const [route, method, status, n] of [
      ['/score', 'POST', '200', 3],
      ['other', 'GET', '404', 1],
      ['/score', 'POST', '200', 2],
      ['/score', 'POST', '400', 1],
    ] as const) {
      reference.inc({ route, method, status }, n);
      counted.of(route, method, status).value += n;
    }
    assert.equal(await samples(ours), await samples(theirs));
    // One series per label values, found again rather than made twice.
    assert.equal(counted.of('/score', 'POST', '200'), counted.of('/score', 'POST', '200'));
    assert.equal(counted.of('/score', 'POST', '200').value, 5);
  });
});
