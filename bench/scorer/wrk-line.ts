// The line post.lua prints when a wrk run ends ("WRK_RESULT {...}"), read back
// for bench.ts and ab.ts.

/** One wrk run as post.lua counted it. */
export interface WrkLine {
  /** Answers received (served or not). */
  readonly requests: number;
  /** Answers that were not HTTP 200 with a result (post.lua's check). */
  readonly bad: number;
  /** Socket errors: connect, read, write, and requests timed out. */
  readonly socketErrors: number;
  /** The run's wall time, seconds. */
  readonly seconds: number;
  /** Latency percentiles, ms. */
  readonly p50: number;
  readonly p99: number;
}

/** Reads the WRK_RESULT line out of wrk's output; fails with the output when there is none. */
export function readWrkLine(output: string): WrkLine {
  const json = /WRK_RESULT (\{.*\})/.exec(output)?.[1];
  if (json === undefined) throw new Error(`wrk printed no result (is wrk installed?): ${output}`);
  const r = JSON.parse(json) as Record<string, number | undefined>;
  const field = (name: string): number => {
    const v = r[name];
    if (typeof v !== 'number') throw new Error(`wrk's result has no number "${name}": ${json}`);
    return v;
  };
  return {
    requests: field('requests'),
    bad: field('bad'),
    socketErrors: field('connect') + field('read') + field('write') + field('timeout'),
    seconds: field('duration_us') / 1e6,
    p50: field('p50_us') / 1000,
    p99: field('p99_us') / 1000,
  };
}
