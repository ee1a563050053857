import { strict as assert } from 'node:assert';
import type { V1Container } from '@kubernetes/client-node';
import { ConfigError, loadConfig } from '../../src/config';
import { desiredCanaryDeployment, desiredDeployment } from '../../src/reconcilers/deployment';
import { desiredNetworkPolicy } from '../../src/reconcilers/networkpolicy';
import { fnolModel, SHA_B, testConfig } from '../fixtures';

const TRACES = {
  SCORER_TRACES_ENDPOINT: 'http://otel-collector.monitoring:4318/',
  SCORER_TRACES_EGRESS_NAMESPACES: 'monitoring',
  SCORER_TRACES_EGRESS_POD_LABELS: 'app.kubernetes.io/name=otel-collector',
  SCORER_TRACES_EGRESS_CIDRS: '10.0.40.0/24',
};

function scorerEnv(c: V1Container[] | undefined): Array<[string, string | undefined]> {
  const s = c?.find((x) => x.name === 'scorer');
  assert.ok(s, 'no scorer container');
  return (s.env ?? []).map((e) => [e.name, e.value]);
}

const monitoringOnly = (env: Array<[string, string | undefined]>) =>
  env.filter(([n]) => n.startsWith('DRIFT') || n.startsWith('OTEL_'));

describe('scorer monitoring settings: drift from the FnolModel, trace export from the operator', () => {
  it('reads the trace export from SCORER_TRACES_*: endpoint without a trailing slash, port by scheme or URL', () => {
    assert.equal(loadConfig({}).scorerTraces, undefined);
    assert.deepEqual(loadConfig(TRACES).scorerTraces, {
      endpoint: 'http://otel-collector.monitoring:4318',
      port: 4318,
      egressCidrs: ['10.0.40.0/24'],
      egressNamespaces: ['monitoring'],
      egressPodLabels: { 'app.kubernetes.io/name': 'otel-collector' },
    });
    const https = loadConfig({
      SCORER_TRACES_ENDPOINT: 'https://traces.example.com/otlp',
      SCORER_TRACES_EGRESS_CIDRS: '203.0.113.0/24',
    }).scorerTraces;
    assert.equal(https?.port, 443);
    assert.equal(https?.endpoint, 'https://traces.example.com/otlp');
  });

  it('refuses a trace export the pods could not use or that would leak: each error names the variable and the fix', () => {
    const refused = (env: Record<string, string>, re: RegExp) =>
      assert.throws(
        () => loadConfig(env),
        (e: Error) => e instanceof ConfigError && re.test(e.message),
      );
    refused(
      { SCORER_TRACES_ENDPOINT: 'http://c.monitoring:4318' },
      /may not reach it: set SCORER_TRACES_EGRESS_NAMESPACES.*SCORER_TRACES_EGRESS_CIDRS/,
    );
    refused(
      { ...TRACES, SCORER_TRACES_ENDPOINT: 'http://user:secret@c:4318' },
      /carries credentials.*remove them/,
    );
    refused({ ...TRACES, SCORER_TRACES_ENDPOINT: 'http://c:4318/?token=x' }, /query string or fragment/);
    refused({ ...TRACES, SCORER_TRACES_ENDPOINT: 'grpc://c:4317' }, /must be http:\/\/ or https:\/\//);
    refused(
      { ...TRACES, SCORER_TRACES_ENDPOINT: 'not a url' },
      /SCORER_TRACES_ENDPOINT="not a url" is not a URL/,
    );
    refused(
      { ...TRACES, SCORER_TRACES_EGRESS_CIDRS: '10.0.40.1/24' },
      /SCORER_TRACES_EGRESS_CIDRS.*host bits/,
    );
    refused({ ...TRACES, SCORER_TRACES_EGRESS_NAMESPACES: 'Monitoring' }, /SCORER_TRACES_EGRESS_NAMESPACES/);
    refused(
      { ...TRACES, SCORER_TRACES_EGRESS_POD_LABELS: 'app' },
      /SCORER_TRACES_EGRESS_POD_LABELS.*key=value/,
    );
    refused(
      { SCORER_TRACES_EGRESS_CIDRS: '10.0.40.0/24' },
      /SCORER_TRACES_EGRESS_\* is set but SCORER_TRACES_ENDPOINT is not/,
    );
    refused(
      {
        SCORER_TRACES_ENDPOINT: 'http://c:4318',
        SCORER_TRACES_EGRESS_CIDRS: '10.0.40.0/24',
        SCORER_TRACES_EGRESS_POD_LABELS: 'app=c',
      },
      /SCORER_TRACES_EGRESS_POD_LABELS selects pods in SCORER_TRACES_EGRESS_NAMESPACES, which is empty/,
    );
  });

  it('sets no DRIFT_* or OTEL_* without spec.monitoring and without trace export (the scorer defaults)', () => {
    const d = desiredDeployment(fnolModel(), testConfig);
    assert.deepEqual(monitoringOnly(scorerEnv(d.spec?.template.spec?.containers)), []);
  });

  it('passes exactly the drift fields the FnolModel sets, and DRIFT=off alone when disabled', () => {
    const some = desiredDeployment(
      fnolModel({ monitoring: { drift: { window: 5000, updateSeconds: 30 } } }),
      testConfig,
    );
    assert.deepEqual(monitoringOnly(scorerEnv(some.spec?.template.spec?.containers)), [
      ['DRIFT_WINDOW', '5000'],
      ['DRIFT_UPDATE_SECONDS', '30'],
    ]);
    const all = desiredDeployment(
      fnolModel({
        monitoring: { drift: { enabled: true, window: 2000, minRecords: 500, updateSeconds: 0 } },
      }),
      testConfig,
    );
    assert.deepEqual(monitoringOnly(scorerEnv(all.spec?.template.spec?.containers)), [
      ['DRIFT_WINDOW', '2000'],
      ['DRIFT_MIN_RECORDS', '500'],
      ['DRIFT_UPDATE_SECONDS', '0'],
    ]);
    const off = desiredDeployment(fnolModel({ monitoring: { drift: { enabled: false } } }), testConfig);
    assert.deepEqual(monitoringOnly(scorerEnv(off.spec?.template.spec?.containers)), [['DRIFT', 'off']]);
  });

  it('gives every scorer pod, stable and candidate, the collector of the admin and a service name per FnolModel', () => {
    const cfg = { ...testConfig, scorerTraces: loadConfig(TRACES).scorerTraces };
    const fm = fnolModel({
      canary: {
        model: { version: '1.1.0', uri: 'https://models.example.test/fnol/fnol-1.1.0.onnx', sha256: SHA_B },
        trafficPercent: 10,
        mirrorPercent: 0,
      },
    });
    const expected = [
      ['OTEL_TRACES_EXPORTER', 'otlp'],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', 'http://otel-collector.monitoring:4318'],
      ['OTEL_SERVICE_NAME', `fnol.${fm.metadata.namespace}`],
    ];
    const stable = desiredDeployment(fm, cfg);
    assert.deepEqual(monitoringOnly(scorerEnv(stable.spec?.template.spec?.containers)), expected);
    const candidate = desiredCanaryDeployment(fm, cfg);
    assert.deepEqual(monitoringOnly(scorerEnv(candidate?.spec?.template.spec?.containers)), expected);
  });

  it('opens egress to the collector only when trace export is on: its namespace and pods, its CIDRs, its port', () => {
    const ports = (p: ReturnType<typeof desiredNetworkPolicy>) =>
      (p.spec?.egress ?? []).flatMap((r) => (r.ports ?? []).map((x) => x.port));
    const off = desiredNetworkPolicy(fnolModel(), testConfig);
    assert.ok(!ports(off).includes(4318));
    const on = desiredNetworkPolicy(fnolModel(), {
      ...testConfig,
      scorerTraces: loadConfig(TRACES).scorerTraces,
    });
    assert.equal(on.spec?.egress?.length, (off.spec?.egress?.length ?? 0) + 1);
    assert.deepEqual(on.spec?.egress?.at(-1), {
      to: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'otel-collector' } },
        },
        { ipBlock: { cidr: '10.0.40.0/24' } },
      ],
      ports: [{ protocol: 'TCP', port: 4318 }],
    });
  });
});
