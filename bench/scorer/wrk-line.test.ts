// The reader of post.lua's closing line: every count it sums comes from the line,
// and output without the line, or a line missing a count, is an error naming it.

import assert from 'node:assert/strict';
import { readWrkLine } from './wrk-line';

const LINE =
  'WRK_RESULT {"requests": 1200, "duration_us": 4000000, "bad": 3, "connect": 1, "read": 2, "write": 4, "status": 0, "timeout": 8, "p50_us": 2500, "p99_us": 12000}';

describe('bench:scorer wrk result line', () => {
  it('reads the counts, sums the socket errors and converts the units', () => {
    const r = readWrkLine(`Running 4s test @ http://127.0.0.1:1\n${LINE}\n`);
    assert.deepEqual(r, { requests: 1200, bad: 3, socketErrors: 15, seconds: 4, p50: 2.5, p99: 12 });
  });

  it('fails with the output when wrk printed no result line', () => {
    assert.throws(
      () => readWrkLine('unable to connect to 127.0.0.1:1'),
      /wrk printed no result.*unable to connect/,
    );
  });

  it('fails naming the count a result line lacks', () => {
    assert.throws(() => readWrkLine(LINE.replace('"timeout": 8, ', '')), /no number "timeout"/);
  });
});
