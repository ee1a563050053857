// The JSON shape check follows nesting across chunk boundaries exactly as
// JSON.parse sees it: brackets inside strings and escaped quotes do not count,
// wherever the body is cut into chunks.

import assert from 'node:assert/strict';
import { JsonShapeCheck } from '../src/request-body';

/** Deepest nesting and number of arrays and objects of a parsed value. */
function measure(value: unknown, depth = 0): { depth: number; containers: number } {
  if (typeof value !== 'object' || value === null) return { depth, containers: 0 };
  const children = Array.isArray(value) ? value : Object.values(value);
  let deepest = depth + 1;
  let containers = 1;
  for (const child of children) {
    const m = measure(child, depth + 1);
    deepest = Math.max(deepest, m.depth);
    containers += m.containers;
  }
  return { depth: deepest, containers };
}

describe('JSON shape check', function () {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const int = (n: number) => Math.floor(random() * n);
  const text = () =>
    Array.from(
      { length: int(6) },
      () => ['[', ']', '{', '}', '"', '\\', 'a', '\\"', '\\\\', 'é'][int(10)],
    ).join('');
  const value = (depth: number): unknown => {
    const r = random();
    if (depth > 6 || r < 0.4) return [1, 'x', text(), null, true][int(5)];
    if (r < 0.7) return Array.from({ length: int(4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: int(4) }, () => [text(), value(depth + 1)]));
  };
  /** Feeds `bytes` in chunks of random sizes (often one byte); returns the first refusal. */
  const feed = (bytes: Buffer, maxDepth: number, maxContainers: number) => {
    const check = new JsonShapeCheck({ maxDepth, maxContainers, containersHint: 'split it' });
    for (let at = 0; at < bytes.length;) {
      const size = random() < 0.5 ? 1 : 1 + int(8);
      const error = check.feed(bytes.subarray(at, at + size));
      if (error) return error;
      at += size;
    }
    return undefined;
  };

  it('finds the exact depth and container count of 500 random documents, in any chunking', () => {
    for (let i = 0; i < 500; i++) {
      const doc = value(0);
      const bytes = Buffer.from(JSON.stringify(doc));
      const { depth, containers } = measure(doc);
      assert.equal(feed(bytes, depth, containers), undefined, `refused at its own limits: ${bytes}`);
      if (depth > 0) {
        const deeper = feed(bytes, depth - 1, containers + 1);
        assert.equal(deeper?.status, 400, `depth ${depth} not seen in ${bytes}`);
        assert.match(deeper?.message ?? '', new RegExp(`nested deeper than ${depth - 1} levels`));
      }
      if (containers > 0 && depth > 0) {
        const more = feed(bytes, depth, containers - 1);
        assert.equal(more?.status, 413, `${containers} containers not counted in ${bytes}`);
        assert.match(more?.message ?? '', /arrays and objects; split it/);
      }
    }
  });

  it('does not count brackets in a string that ends in escaped backslashes across chunks', () => {
    const bytes = Buffer.from(JSON.stringify({ a: 'x\\\\', b: '[[[[\\"[[', c: [[1]] }));
    for (let cut = 1; cut < bytes.length; cut++) {
      const check = new JsonShapeCheck({ maxDepth: 3, maxContainers: 3, containersHint: '' });
      assert.equal(check.feed(bytes.subarray(0, cut)), undefined);
      assert.equal(check.feed(bytes.subarray(cut)), undefined, `cut at ${cut}`);
    }
  });
});
