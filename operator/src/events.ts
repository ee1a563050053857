/** Kubernetes Events on a FnolModel, shown by `kubectl describe fm`. */
import { API_VERSION, apiPath, KIND, Kinds, type FnolModel } from '@fnol/api';
import type { KubeClient } from './kube/client';
import type { StatusEvent } from './status';

export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly instance: string,
  ) {}

  async record(fm: FnolModel, ev: StatusEvent, now: Date): Promise<void> {
    const ts = now.toISOString();
    await this.client.create(apiPath(Kinds.Event, { namespace: fm.metadata.namespace }), {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${fm.metadata.name}.`, namespace: fm.metadata.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: fm.metadata.name,
        namespace: fm.metadata.namespace,
        uid: fm.metadata.uid,
        resourceVersion: fm.metadata.resourceVersion,
      },
      type: ev.type,
      reason: ev.reason,
      message: ev.message.slice(0, 1000),
      source: { component: 'fnol-operator' },
      reportingComponent: 'fnol-operator',
      reportingInstance: this.instance.slice(0, 128),
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    });
  }
}
