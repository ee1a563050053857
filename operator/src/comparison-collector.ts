/**
 * The canary comparison, read off the workers.
 *
 * While a FnolModel's stable pods mirror to a candidate, its figures
 * (status.canary.comparison) come from each stable pod's GET /shadow, which
 * takes up to SHADOW_TIMEOUT_MS per pod. That reading does not belong in the
 * reconcile, where it would hold a worker every period: the collector keeps
 * one timer per mirroring FnolModel, reads its figures every period (at most
 * `maxConcurrent` reads at once over all FnolModels), keeps the latest, and
 * queues the FnolModel only when the figures changed. The reconcile asks for
 * the latest figures (no I/O) and says which candidate version, if any, the
 * FnolModel mirrors to; that is also how collecting starts and stops.
 */
import type { Logger } from 'pino';
import type { FnolModelStatusCanaryComparison } from '@fnol/api';

export interface ComparisonTarget {
  readonly namespace: string;
  readonly name: string;
  /** The candidate version the stable pods mirror to (reports of other versions are left out). */
  readonly version: string;
}

/** Reads a FnolModel's figures from its stable pods; undefined when there is nothing to read. */
export type ReadComparison = (
  target: ComparisonTarget,
) => Promise<FnolModelStatusCanaryComparison | undefined>;

export interface CollectorOptions {
  periodMs: number;
  read: ReadComparison;
  /** The figures of this FnolModel (namespace/name) changed: queue its reconcile. */
  onChange: (key: string) => void;
  log: Logger;
  /** Reads running at once over all FnolModels. */
  maxConcurrent?: number;
}

interface Followed {
  readonly version: string;
  latest: FnolModelStatusCanaryComparison | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** The figures without their time stamp, to tell a change from a new reading of the same figures. */
function figuresOf(c: FnolModelStatusCanaryComparison | undefined): string {
  if (c === undefined) return '';
  const { updatedAt: _at, ...rest } = c;
  return JSON.stringify(rest);
}

export class ComparisonCollector {
  private readonly followed = new Map<string, Followed>();
  private readonly waiting: Array<() => void> = [];
  private reading = 0;
  private closed = false;
  private readonly maxConcurrent: number;

  constructor(private readonly opts: CollectorOptions) {
    this.maxConcurrent = opts.maxConcurrent ?? 4;
  }

  /**
   * Called by the reconcile of `key` (namespace/name): its stable pods mirror
   * to `version`, or to nothing (undefined: collecting stops and the figures
   * are forgotten). Returns the latest figures read for that version, if any.
   * A new version starts a first read at once.
   */
  follow(key: string, version: string | undefined): FnolModelStatusCanaryComparison | undefined {
    const current = this.followed.get(key);
    if (current && current.version === version) return current.latest;
    if (current) {
      clearTimeout(current.timer);
      this.followed.delete(key);
    }
    if (version === undefined || this.closed) return undefined;
    const next: Followed = { version, latest: undefined, timer: undefined };
    this.followed.set(key, next);
    this.schedule(key, next, 0);
    return undefined;
  }

  /** FnolModels whose figures are being collected. */
  get size(): number {
    return this.followed.size;
  }

  /** Stops every timer; reads in flight finish and are dropped. */
  close(): void {
    this.closed = true;
    for (const f of this.followed.values()) clearTimeout(f.timer);
    this.followed.clear();
    for (const wake of this.waiting.splice(0)) wake();
  }

  private schedule(key: string, f: Followed, delayMs: number): void {
    f.timer = setTimeout(() => void this.collect(key, f), delayMs);
    f.timer.unref();
  }

  private async collect(key: string, f: Followed): Promise<void> {
    f.timer = undefined;
    await this.slot();
    if (this.closed || this.followed.get(key) !== f) return this.release();
    const [namespace = '', name = ''] = key.split('/');
    let figures: FnolModelStatusCanaryComparison | undefined;
    try {
      figures = await this.opts.read({ namespace, name, version: f.version });
    } catch (err) {
      this.opts.log.warn(
        { fnolmodel: key, err: (err as Error).message },
        'could not read the canary comparison; keeping the previous figures',
      );
    } finally {
      this.release();
    }
    // Followed no more, or another version now: this reading is stale.
    if (this.closed || this.followed.get(key) !== f) return;
    if (figures !== undefined && figuresOf(figures) !== figuresOf(f.latest)) {
      f.latest = figures;
      this.opts.onChange(key);
    }
    this.schedule(key, f, this.opts.periodMs);
  }

  private slot(): Promise<void> {
    if (this.reading < this.maxConcurrent || this.closed) {
      this.reading++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.reading++;
        resolve();
      }),
    );
  }

  private release(): void {
    this.reading--;
    const next = this.waiting.shift();
    if (next) next();
  }
}
