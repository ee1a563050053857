// Time as the scorer's HTTP layer sees it: injected, so tests can control durations.

export interface Clock {
  /** Monotonic milliseconds, for durations. */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };
