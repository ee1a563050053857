/**
 * Monitoring settings of the scorer pods on a real API server: drift from the
 * FnolModel's spec.monitoring.drift, trace export from the operator's
 * configuration (the cluster admin's), in the pod template and the
 * NetworkPolicy exactly, and changed as the FnolModel changes.
 */
import { strict as assert } from 'node:assert';
import type { V1Deployment, V1NetworkPolicy } from '@kubernetes/client-node';
import type { RunningOperator } from '../../src/app';
import type { KubeClient } from '../../src/kube/client';
import { OWNED_KINDS, resourcePath } from '../../src/reconcilers/index';
import { createTestNamespace } from '../../../test/support/cluster';
import {
  adminClient,
  clusterWithCrd,
  inProcessOperator,
  modelManifest,
  modelPath,
  ModelServer,
  waitFor,
} from './harness';

const NAME = 'fnol';

type Env = Array<[string, string | undefined]>;

function monitoringEnv(d: V1Deployment | undefined): Env | undefined {
  const c = d?.spec?.template.spec?.containers.find((x) => x.name === 'scorer');
  if (!c) return undefined;
  return (c.env ?? []).filter((e) => /^(DRIFT|OTEL_)/.test(e.name)).map((e) => [e.name, e.value]);
}

describe('operator integration: drift settings from the FnolModel, trace export from the operator', function () {
  let client: KubeClient;
  let ns: string;
  let op: RunningOperator;
  const models = new ModelServer();

  const deployment = () => client.get<V1Deployment>(resourcePath(OWNED_KINDS.Deployment, ns, NAME));
  const untilEnv = (what: string, want: Env) =>
    waitFor(
      what,
      async () => {
        const got = monitoringEnv(await deployment());
        return JSON.stringify(got) === JSON.stringify(want) ? got : false;
      },
      20_000,
    );

  before(async function () {
    const cluster = await clusterWithCrd(this);
    client = adminClient(cluster);
    ns = await createTestNamespace('op-monitoring');
    await models.start();
    op = await inProcessOperator(cluster.kubeConfig, ns, {
      SCORER_TRACES_ENDPOINT: 'http://otel-collector.monitoring.svc:4318',
      SCORER_TRACES_EGRESS_NAMESPACES: 'monitoring',
      SCORER_TRACES_EGRESS_POD_LABELS: 'app.kubernetes.io/name=otel-collector',
    });
  });

  after(async () => {
    await op?.stop();
    await models.stop();
  });

  it('gives the pod template the drift fields the FnolModel sets and the collector of the operator, nothing else', async () => {
    const m = models.publish('fnol-1.0.0.onnx', 'model bytes');
    await client.create(
      modelPath(ns),
      modelManifest(
        ns,
        NAME,
        { version: '1.0.0', ...m },
        { monitoring: { drift: { window: 2000, updateSeconds: 30 } } },
      ),
    );
    await untilEnv('the drift and trace settings in the pod template', [
      ['DRIFT_WINDOW', '2000'],
      ['DRIFT_UPDATE_SECONDS', '30'],
      ['OTEL_TRACES_EXPORTER', 'otlp'],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', 'http://otel-collector.monitoring.svc:4318'],
      ['OTEL_SERVICE_NAME', `${NAME}.${ns}`],
    ]);
    const policy = await client.get<V1NetworkPolicy>(resourcePath(OWNED_KINDS.NetworkPolicy, ns, NAME));
    const toCollector = policy?.spec?.egress?.filter((r) => r.ports?.some((p) => p.port === 4318)) ?? [];
    assert.deepEqual(toCollector, [
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'otel-collector' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 4318 }],
      },
    ]);
  });

  it('follows the FnolModel: drift turned off, then its settings removed', async () => {
    await client.mergePatch(modelPath(ns, NAME), {
      spec: { monitoring: { drift: { enabled: false, window: null, updateSeconds: null } } },
    });
    const traces: Env = [
      ['OTEL_TRACES_EXPORTER', 'otlp'],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', 'http://otel-collector.monitoring.svc:4318'],
      ['OTEL_SERVICE_NAME', `${NAME}.${ns}`],
    ];
    await untilEnv('DRIFT=off alone', [['DRIFT', 'off'], ...traces]);
    await client.mergePatch(modelPath(ns, NAME), { spec: { monitoring: null } });
    await untilEnv('no drift settings (the scorer defaults)', traces);
  });

  it('leaves the Deployment as it is when the API server refuses a change of the settings', async () => {
    const before = await deployment();
    await assert.rejects(
      client.mergePatch(modelPath(ns, NAME), {
        spec: { monitoring: { drift: { window: 500, minRecords: 600 } } },
      }),
      /minRecords is more than the window/,
    );
    // A later, valid change is reconciled: the refused one left nothing behind.
    await client.mergePatch(modelPath(ns, NAME), { spec: { replicas: 1 } });
    await waitFor('the replicas change', async () =>
      (await deployment())?.spec?.replicas === 1 ? true : false,
    );
    assert.deepEqual(monitoringEnv(await deployment()), monitoringEnv(before));
  });
});
