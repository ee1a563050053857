/**
 * Leader election on a coordination.k8s.io/v1 Lease, the protocol of client-go:
 * the holder renews spec.renewTime every retry period; a candidate takes the
 * lease over when the record has not changed for leaseDuration by its own clock
 * (no trust in other nodes' clocks); updates carry resourceVersion, so two
 * candidates cannot both win. A leader that cannot renew within renewDeadline
 * stops leading.
 */
import type { Logger } from 'pino';
import { apiPath, Kinds } from '@fnol/api';
import { isConflict, KubeClient } from '../kube/client';

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  name: string;
  namespace: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private stopped = false;
  private observedRecord = '';
  private observedAt = 0;
  private lastRenew = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectionOptions,
    private readonly log: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return apiPath(Kinds.Lease, { namespace: this.opts.namespace });
  }

  private get leasePath(): string {
    return apiPath(Kinds.Lease, { namespace: this.opts.namespace, name: this.opts.name });
  }

  start(): void {
    this.log.info(
      { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity },
      'waiting for leadership',
    );
    void this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.opts.retryPeriodMs);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let acquired = false;
    try {
      acquired = await this.tryAcquireOrRenew();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lease request failed');
    }
    if (this.stopped) return;
    const now = Date.now();
    if (acquired) {
      this.lastRenew = now;
      if (!this.leading) {
        this.leading = true;
        this.log.info({ identity: this.opts.identity }, 'became leader');
        this.opts.onStartedLeading();
      }
    } else if (this.leading && now - this.lastRenew > this.opts.renewDeadlineMs) {
      this.leading = false;
      this.log.error({ identity: this.opts.identity }, 'lost leadership: could not renew the lease in time');
      this.opts.onStoppedLeading();
      return;
    }
    this.schedule();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const lease = await this.client.get<Lease>(this.leasePath);
    const durationSeconds = Math.ceil(this.opts.leaseDurationMs / 1000);
    if (!lease) {
      await this.client.create(this.path, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
        spec: {
          holderIdentity: this.opts.identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
    const holder = spec.holderIdentity ?? '';
    const held = holder !== '' && holder !== this.opts.identity;
    const leaseMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (held && this.observedAt + leaseMs > Date.now()) return false;

    const takingOver = holder !== this.opts.identity;
    const updated: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: microTime(now),
        acquireTime: takingOver ? microTime(now) : spec.acquireTime,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && holder !== '' ? 1 : 0),
      },
    };
    try {
      await this.client.replace(this.leasePath, updated);
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    return true;
  }

  /** Stops campaigning; a leader hands the lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.get<Lease>(this.leasePath);
      if (lease?.spec?.holderIdentity === this.opts.identity) {
        await this.client.replace(this.leasePath, {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: microTime(new Date()),
          },
        });
        this.log.info('released the leader lease');
      }
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        'could not release the lease; the standby takes over when it expires',
      );
    }
  }
}
