import { strict as assert } from 'node:assert';
import type { V1Deployment } from '@kubernetes/client-node';
import { Labels, type FnolModel } from '@fnol/api';
import { canaryReplicas } from '../../src/reconcilers/common';
import {
  appliedMirrorOf,
  desiredCanaryDeployment,
  desiredDeployment,
  mirrorOf,
  servedModelOf,
} from '../../src/reconcilers/deployment';
import { appliedCanaryWeight, canaryWeight, desiredHttpRoute } from '../../src/reconcilers/httproute';
import { desiredChildren } from '../../src/reconcilers/index';
import { desiredCanaryNetworkPolicy, desiredNetworkPolicy } from '../../src/reconcilers/networkpolicy';
import { desiredCanaryService, desiredService } from '../../src/reconcilers/service';
import { computeStatus, transitionEvents } from '../../src/status';
import { fnolModel, SHA_B, testConfig } from '../fixtures';

const CANDIDATE = {
  version: '1.1.0',
  uri: 'https://models.example.test/fnol/fnol-1.1.0.onnx',
  sha256: SHA_B,
};
const GATEWAY = { parentRef: { name: 'public', namespace: 'gateways' }, path: '/' };

function withCanary(
  canary: Partial<NonNullable<FnolModel['spec']['canary']>> = {},
  overrides: Partial<FnolModel['spec']> = {},
): FnolModel {
  return fnolModel({
    canary: { model: CANDIDATE, trafficPercent: 0, mirrorPercent: 0, ...canary },
    ...overrides,
  });
}

function labelsMatch(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
) {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
}

function env(d: V1Deployment | undefined): Record<string, string> {
  const c = d?.spec?.template?.spec?.containers?.[0];
  return Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? '']));
}

describe('reconcilers: the candidate of spec.canary', () => {
  it('Deployment <name>-canary serves spec.canary.model with the canary labels', () => {
    const fm = withCanary({ mirrorPercent: 100 });
    const d = desiredCanaryDeployment(fm, testConfig)!;
    assert.equal(d.metadata?.name, 'fnol-canary');
    assert.deepEqual(d.spec?.selector.matchLabels, {
      'app.kubernetes.io/name': 'fnol-scorer',
      'app.kubernetes.io/instance': 'fnol-canary',
      [Labels.model]: 'fnol',
      [Labels.track]: 'canary',
    });
    const labels = d.spec?.template.metadata?.labels;
    assert.equal(labels?.[Labels.track], 'canary');
    assert.equal(labels?.[Labels.modelVersion], '1.1.0');
    assert.equal(labels?.['app.kubernetes.io/managed-by'], 'fnol-operator');
    assert.deepEqual(servedModelOf(d), CANDIDATE);
    // The candidate never mirrors itself.
    assert.equal(env(d).SHADOW_URL, undefined);
    assert.equal(d.metadata?.ownerReferences?.[0]?.uid, fm.metadata.uid);
    assert.equal(desiredCanaryDeployment(fnolModel(), testConfig), undefined);
  });

  it("the candidate mounts its own credentials Secret, not spec.model's", () => {
    const fm = withCanary(
      { model: { ...CANDIDATE, credentialsSecretRef: { name: 'cand-sas', key: 'sasToken' } } },
      {
        model: {
          ...fnolModel().spec.model,
          credentialsSecretRef: { name: 'stable-sas', key: 'sasToken' },
        },
      },
    );
    const secretOf = (d: V1Deployment | undefined) =>
      d?.spec?.template.spec?.volumes?.find((v) => v.name === 'model-credentials')?.secret?.secretName;
    assert.equal(secretOf(desiredCanaryDeployment(fm, testConfig)), 'cand-sas');
    assert.equal(secretOf(desiredDeployment(fm, testConfig)), 'stable-sas');
  });

  it('the stable selector is unchanged; the track label is in the stable pod template only', () => {
    const plain = desiredDeployment(fnolModel(), testConfig);
    const fm = withCanary();
    const stable = desiredDeployment(fm, testConfig);
    assert.deepEqual(stable.spec?.selector, plain.spec?.selector);
    assert.deepEqual(stable.spec?.selector.matchLabels, {
      'app.kubernetes.io/name': 'fnol-scorer',
      'app.kubernetes.io/instance': 'fnol',
    });
    assert.equal(stable.spec?.template.metadata?.labels?.[Labels.track], 'stable');
  });

  it('the stable Service never selects candidate pods; the candidate Service selects only them', () => {
    const fm = withCanary();
    const stablePods = desiredDeployment(fm, testConfig).spec?.template.metadata?.labels;
    const canaryPods = desiredCanaryDeployment(fm, testConfig)?.spec?.template.metadata?.labels;
    const stableSvc = desiredService(fm);
    const canarySvc = desiredCanaryService(fm)!;
    assert.equal(canarySvc.metadata?.name, 'fnol-canary');
    assert.deepEqual(canarySvc.spec?.ports, stableSvc.spec?.ports);
    assert.ok(labelsMatch(stableSvc.spec?.selector, stablePods));
    assert.ok(!labelsMatch(stableSvc.spec?.selector, canaryPods));
    assert.ok(labelsMatch(canarySvc.spec?.selector, canaryPods));
    assert.ok(!labelsMatch(canarySvc.spec?.selector, stablePods));
    // Nor the pods of a FnolModel named fnol-canary (they carry its model label).
    const other = desiredDeployment(fnolModel({}, 'fnol-canary'), testConfig).spec?.template.metadata?.labels;
    assert.ok(!labelsMatch(canarySvc.spec?.selector, other));
    assert.equal(desiredCanaryService(fnolModel()), undefined);
  });

  it('replicas: spec.canary.replicas, else ceil(stable x max(traffic, mirror) / 100), at least 1', () => {
    assert.equal(canaryReplicas(fnolModel()), 0);
    assert.equal(canaryReplicas(withCanary({ replicas: 3 })), 3);
    assert.equal(canaryReplicas(withCanary({ replicas: 0, mirrorPercent: 100 })), 0);
    assert.equal(canaryReplicas(withCanary({}, { replicas: 4 })), 1);
    assert.equal(canaryReplicas(withCanary({ trafficPercent: 10 }, { replicas: 4, gateway: GATEWAY })), 1);
    assert.equal(canaryReplicas(withCanary({ trafficPercent: 30, mirrorPercent: 60 }, { replicas: 4 })), 3);
    assert.equal(canaryReplicas(withCanary({ mirrorPercent: 100 }, { replicas: 5 })), 5);
    assert.equal(canaryReplicas(withCanary({ mirrorPercent: 50 }, { replicas: 0 })), 1);
    const auto = withCanary(
      { trafficPercent: 50 },
      {
        autoscaling: { minReplicas: 3, maxReplicas: 9, targetCPUUtilizationPercentage: 70 },
        gateway: GATEWAY,
      },
    );
    assert.equal(canaryReplicas(auto), 2);
    assert.equal(desiredCanaryDeployment(auto, testConfig)?.spec?.replicas, 2);
  });

  it('the stable pods mirror (SHADOW_*) only with mirrorPercent > 0', () => {
    assert.equal(mirrorOf(withCanary(), '10.96.0.42'), undefined);
    assert.equal(mirrorOf(fnolModel(), '10.96.0.42'), undefined);
    const fm = withCanary({ mirrorPercent: 25 });
    // Not before the candidate's Service has its cluster IP.
    assert.equal(mirrorOf(fm, undefined), undefined);
    assert.equal(mirrorOf(fm, 'None'), undefined);
    assert.equal(mirrorOf(fm, 'fd00::2a')?.url, 'http://[fd00::2a]:80');
    const mirror = mirrorOf(fm, '10.96.0.42')!;
    assert.deepEqual(mirror, {
      url: 'http://10.96.0.42:80',
      percent: 25,
      version: '1.1.0',
    });
    const d = desiredDeployment(fm, testConfig, fm.spec.model, mirror);
    assert.equal(env(d).SHADOW_URL, 'http://10.96.0.42:80');
    assert.equal(env(d).SHADOW_PERCENT, '25');
    assert.equal(env(d).SHADOW_VERSION, '1.1.0');
    assert.deepEqual(appliedMirrorOf(d), mirror);
    const without = desiredDeployment(fm, testConfig, fm.spec.model, undefined);
    assert.equal(
      Object.keys(env(without)).some((k) => k.startsWith('SHADOW_')),
      false,
    );
    assert.equal(appliedMirrorOf(without), undefined);
  });

  it('NetworkPolicies: stable egress to the candidate, candidate ingress from the stable pods, both from the operator only where needed', () => {
    const fm = withCanary({ mirrorPercent: 100 });
    const stable = desiredNetworkPolicy(fm, testConfig);
    const canary = desiredCanaryNetworkPolicy(fm, testConfig)!;
    const canaryPods = desiredCanaryDeployment(fm, testConfig)?.spec?.template.metadata?.labels;
    const stablePods = desiredDeployment(fm, testConfig).spec?.template.metadata?.labels;
    assert.equal(canary.metadata?.name, 'fnol-canary');
    assert.ok(labelsMatch(canary.spec?.podSelector.matchLabels, canaryPods));
    assert.ok(!labelsMatch(canary.spec?.podSelector.matchLabels, stablePods));
    // Stable → candidate on the scorer port.
    const toCanary = stable.spec?.egress?.find((r) =>
      r.to?.some((p) => labelsMatch(p.podSelector?.matchLabels, canaryPods) && p.podSelector),
    );
    assert.deepEqual(toCanary?.ports, [{ protocol: 'TCP', port: 8080 }]);
    assert.equal(toCanary?.to?.[0]?.namespaceSelector, undefined, 'same namespace only');
    // Candidate accepts the stable pods.
    const fromStable = canary.spec?.ingress?.find((r) =>
      r.from?.some((p) => p.podSelector && labelsMatch(p.podSelector.matchLabels, stablePods)),
    );
    assert.deepEqual(fromStable?.ports, [{ protocol: 'TCP', port: 8080 }]);
    // The operator's pods may read the stable pods' /shadow.
    const fromOperator = stable.spec?.ingress?.find((r) =>
      r.from?.some((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'fnol-operator'),
    );
    assert.deepEqual(fromOperator?.from?.[0]?.namespaceSelector?.matchLabels, {
      'kubernetes.io/metadata.name': 'fnol-system',
    });
    assert.deepEqual(fromOperator?.ports, [{ protocol: 'TCP', port: 8080 }]);
    // The candidate's egress is the stable pods' minus the mirror rule.
    assert.deepEqual(canary.spec?.egress, desiredNetworkPolicy(fnolModel(), testConfig).spec?.egress);
    // Without a canary: no policy for it and no egress rule to it.
    assert.equal(desiredCanaryNetworkPolicy(fnolModel(), testConfig), undefined);
    assert.equal(desiredNetworkPolicy(fnolModel(), testConfig).spec?.egress?.length, 2);
  });
});

describe('reconcilers: HTTPRoute', () => {
  it('none without spec.gateway', () => {
    assert.equal(desiredHttpRoute(withCanary({ mirrorPercent: 10 }), 0), undefined);
  });

  it('parentRef, hostnames, the public paths under spec.gateway.path, the stable Service only without a canary', () => {
    const fm = fnolModel({
      gateway: {
        parentRef: { name: 'public', namespace: 'gateways', sectionName: 'https' },
        hostnames: ['fnol.example.test'],
        path: '/claims/',
      },
    });
    const r = desiredHttpRoute(fm, 0)!;
    assert.equal(r.apiVersion, 'gateway.networking.k8s.io/v1');
    assert.equal(r.metadata.name, 'fnol');
    assert.deepEqual(r.spec.parentRefs, [
      {
        group: 'gateway.networking.k8s.io',
        kind: 'Gateway',
        name: 'public',
        namespace: 'gateways',
        sectionName: 'https',
      },
    ]);
    assert.deepEqual(r.spec.hostnames, ['fnol.example.test']);
    assert.deepEqual(
      r.spec.rules[0]?.matches.map((m) => `${m.path.type} ${m.path.value}`),
      [
        'Exact /claims/score',
        'Exact /claims/model',
        'Exact /claims/openapi.json',
        'PathPrefix /claims/v2/models',
      ],
    );
    assert.deepEqual(r.spec.rules[0]?.backendRefs, [{ name: 'fnol', port: 80, weight: 100 }]);
    // No probe or metrics path is routed.
    assert.ok(!r.spec.rules[0]?.matches.some((m) => /healthz|readyz|metrics|shadow/.test(m.path.value)));
  });

  it('weights 100 - t and t; the candidate backend left out while t is 0', () => {
    const fm = withCanary({ trafficPercent: 10 }, { gateway: GATEWAY });
    assert.deepEqual(desiredHttpRoute(fm, 10)?.spec.rules[0]?.backendRefs, [
      { name: 'fnol', port: 80, weight: 90 },
      { name: 'fnol-canary', port: 80, weight: 10 },
    ]);
    assert.deepEqual(desiredHttpRoute(fm, 0)?.spec.rules[0]?.backendRefs, [
      { name: 'fnol', port: 80, weight: 100 },
    ]);
    assert.deepEqual(desiredHttpRoute(fm, 100)?.spec.rules[0]?.backendRefs, [
      { name: 'fnol', port: 80, weight: 0 },
      { name: 'fnol-canary', port: 80, weight: 100 },
    ]);
    assert.equal(desiredHttpRoute(fm, 0)?.spec.hostnames, undefined);
  });

  it('the canary weight stays 0 until the candidate has ready pods', () => {
    const fm = withCanary({ trafficPercent: 30 }, { gateway: GATEWAY });
    assert.equal(canaryWeight(fm, 0), 0);
    assert.equal(canaryWeight(fm, 1), 30);
    assert.equal(canaryWeight(fnolModel({ gateway: GATEWAY }), 3), 0);
    assert.equal(appliedCanaryWeight(desiredHttpRoute(fm, 30), fm), 30);
    assert.equal(appliedCanaryWeight(desiredHttpRoute(fm, 0), fm), 0);
    assert.equal(appliedCanaryWeight(undefined, fm), 0);
  });
});

describe('desiredChildren with spec.canary', () => {
  const inputs = { canaryWeight: 0, httpRoutes: true, mirror: undefined };

  it("applies the candidate's Deployment only once its model passed the check", () => {
    const fm = withCanary({ mirrorPercent: 100 });
    const names = (ready: boolean) =>
      desiredChildren(fm, testConfig, { ...inputs, model: fm.spec.model, canaryModelReady: ready })
        .filter((c) => c.object)
        .map((c) => `${c.kind.kind}/${c.name}`);
    assert.ok(names(true).includes('Deployment/fnol-canary'));
    assert.ok(!names(false).includes('Deployment/fnol-canary'));
    // Its Service and NetworkPolicy are there either way (no pods to select yet).
    assert.ok(names(false).includes('Service/fnol-canary'));
    assert.ok(names(false).includes('NetworkPolicy/fnol-canary'));
    // Not checked yet means "leave it", not "delete it".
    const kids = desiredChildren(fm, testConfig, {
      ...inputs,
      model: fm.spec.model,
      canaryModelReady: false,
    });
    assert.ok(!kids.some((c) => c.kind.kind === 'Deployment' && c.name === 'fnol-canary'));
  });

  it('marks every candidate object for deletion once spec.canary is gone', () => {
    const fm = fnolModel();
    const gone = desiredChildren(fm, testConfig, { ...inputs, model: fm.spec.model, canaryModelReady: false })
      .filter((c) => c.name === 'fnol-canary')
      .map((c) => `${c.kind.kind}:${c.object ? 'apply' : 'delete'}`);
    assert.deepEqual(gone, ['NetworkPolicy:delete', 'Service:delete', 'Deployment:delete']);
  });
});

describe('status.canary and CanaryReady', () => {
  const NOW = new Date('2026-01-02T03:04:05.000Z');
  const complete = {
    observedGeneration: 1,
    replicas: 2,
    updatedReplicas: 2,
    readyReplicas: 2,
    availableReplicas: 2,
    conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' }],
  };
  function live(d: V1Deployment, status: V1Deployment['status']): V1Deployment {
    return { ...d, metadata: { ...d.metadata, uid: `${d.metadata?.name}-uid`, generation: 1 }, status };
  }
  const rs = {
    metadata: {
      name: 'fnol-1',
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'fnol', uid: 'fnol-uid', controller: true },
      ],
    },
    spec: { selector: {}, template: { metadata: { labels: { [Labels.modelVersion]: '1.0.0' } } } },
    status: { replicas: 2, readyReplicas: 2 },
  };
  function statusOf(
    fm: FnolModel,
    canary: Parameters<typeof computeStatus>[0]['canary'],
    extra: object = {},
  ) {
    const mirror = mirrorOf(fm, '10.96.0.42');
    const stable = live(desiredDeployment(fm, testConfig, fm.spec.model, mirror), complete);
    return computeStatus({
      fm,
      deployment: stable,
      replicaSets: [rs],
      now: NOW,
      ...(canary ? { canary } : {}),
      ...extra,
    });
  }
  const cond = (s: ReturnType<typeof computeStatus>, t: string) => s.conditions?.find((c) => c.type === t);

  it("True once the candidate has ready pods and its shares are applied; Ready is the stable version's", () => {
    const fm = withCanary({ mirrorPercent: 100, trafficPercent: 10 }, { gateway: GATEWAY });
    const cd = live(desiredCanaryDeployment(fm, testConfig)!, {
      ...complete,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
    });
    cd.spec!.replicas = 1;
    const s = statusOf(fm, { deployment: cd, trafficPercent: 10, mirrorPercent: 100 });
    assert.deepEqual(s.canary, {
      version: '1.1.0',
      readyReplicas: 1,
      trafficPercent: 10,
      mirrorPercent: 100,
    });
    assert.equal(cond(s, 'CanaryReady')?.status, 'True');
    assert.equal(cond(s, 'CanaryReady')?.reason, 'CanaryServing');
    assert.equal(cond(s, 'Ready')?.status, 'True');
    assert.equal(s.phase, 'Ready');
    assert.equal(s.activeVersion, '1.0.0');
  });

  it('False with the reason while verifying, blocked, rolling out, or the shares are not applied yet', () => {
    const fm = withCanary({ mirrorPercent: 100, trafficPercent: 10 }, { gateway: GATEWAY });
    const verifying = statusOf(fm, {
      deployment: undefined,
      verifying: true,
      trafficPercent: 0,
      mirrorPercent: 0,
    });
    assert.equal(cond(verifying, 'CanaryReady')?.status, 'False');
    assert.equal(cond(verifying, 'CanaryReady')?.reason, 'VerifyingModel');
    assert.equal(cond(verifying, 'Ready')?.status, 'True', 'the stable version still serves');
    assert.equal(verifying.canary?.readyReplicas, 0);

    const blocked = statusOf(fm, {
      deployment: undefined,
      blocked: {
        reason: 'ModelDigestMismatch',
        message: 'spec.canary.model.sha256 is b..., the file has c...',
      },
      trafficPercent: 0,
      mirrorPercent: 0,
    });
    assert.equal(cond(blocked, 'CanaryReady')?.reason, 'ModelDigestMismatch');
    assert.match(
      cond(blocked, 'CanaryReady')?.message ?? '',
      /candidate version 1\.1\.0 is not rolled out: spec\.canary\.model\.sha256/,
    );
    assert.equal(
      cond(blocked, 'Degraded')?.status,
      'False',
      "the candidate's failure does not degrade the stable version",
    );

    const starting = live(desiredCanaryDeployment(fm, testConfig)!, {
      observedGeneration: 1,
      replicas: 1,
      updatedReplicas: 1,
    });
    const rolling = statusOf(fm, { deployment: starting, trafficPercent: 0, mirrorPercent: 0 });
    assert.equal(cond(rolling, 'CanaryReady')?.reason, 'CanaryRollingOut');

    const ready = live(desiredCanaryDeployment(fm, testConfig)!, {
      ...complete,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
    });
    ready.spec!.replicas = 1;
    const noMirror = statusOf(fm, { deployment: ready, trafficPercent: 10, mirrorPercent: 0 });
    assert.equal(cond(noMirror, 'CanaryReady')?.reason, 'MirrorRollingOut');
    const noWeight = statusOf(fm, { deployment: ready, trafficPercent: 0, mirrorPercent: 100 });
    assert.equal(cond(noWeight, 'CanaryReady')?.reason, 'CanaryRollingOut');

    const failed = live(desiredCanaryDeployment(fm, testConfig)!, {
      observedGeneration: 1,
      replicas: 1,
      updatedReplicas: 1,
      conditions: [
        { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'timed out' },
      ],
    });
    assert.equal(
      cond(statusOf(fm, { deployment: failed, trafficPercent: 0, mirrorPercent: 0 }), 'CanaryReady')?.reason,
      'CanaryFailed',
    );
  });

  it('False with ScaledToZero when spec.canary.replicas is 0', () => {
    const fm = withCanary({ replicas: 0, mirrorPercent: 100 });
    const cd = live(desiredCanaryDeployment(fm, testConfig)!, { observedGeneration: 1 });
    const s = statusOf(fm, { deployment: cd, trafficPercent: 0, mirrorPercent: 0 });
    assert.equal(cond(s, 'CanaryReady')?.status, 'False');
    assert.equal(cond(s, 'CanaryReady')?.reason, 'ScaledToZero');
  });

  it('Events: Normal when the candidate becomes ready, Warning when it fails, nothing for rollout steps', () => {
    const fm = withCanary({ mirrorPercent: 100 });
    const verifying = statusOf(fm, {
      deployment: undefined,
      verifying: true,
      trafficPercent: 0,
      mirrorPercent: 0,
    });
    const failed = statusOf(fm, {
      deployment: undefined,
      blocked: { reason: 'ModelDigestMismatch', message: 'spec.canary.model.sha256 is b...' },
      trafficPercent: 0,
      mirrorPercent: 0,
    });
    const cd = live(desiredCanaryDeployment(fm, testConfig)!, {
      ...complete,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
    });
    cd.spec!.replicas = 1;
    const ready = statusOf(fm, { deployment: cd, trafficPercent: 0, mirrorPercent: 100 });
    const canaryEvents = (a: typeof ready | undefined, b: typeof ready) =>
      transitionEvents(a, b)
        .filter((e) => e.reason !== 'Ready')
        .map((e) => `${e.type} ${e.reason}`);
    assert.deepEqual(canaryEvents(ready, verifying), []);
    assert.deepEqual(canaryEvents(verifying, failed), ['Warning ModelDigestMismatch']);
    assert.deepEqual(canaryEvents(failed, failed), []);
    assert.deepEqual(canaryEvents(verifying, ready), ['Normal CanaryReady']);
    assert.deepEqual(canaryEvents(ready, ready), []);
  });

  it('no status.canary nor CanaryReady without spec.canary', () => {
    const s = statusOf(fnolModel(), undefined);
    assert.equal(s.canary, undefined);
    assert.equal(cond(s, 'CanaryReady'), undefined);
  });

  it("spec.gateway without the Gateway API: Degraded says so, Ready stays the stable version's", () => {
    const fm = fnolModel({ gateway: GATEWAY });
    const s = statusOf(fm, undefined, { gatewayMissing: true });
    assert.equal(cond(s, 'Degraded')?.status, 'True');
    assert.equal(cond(s, 'Degraded')?.reason, 'GatewayAPIMissing');
    assert.match(
      cond(s, 'Degraded')?.message ?? '',
      /Gateway API CRDs \(HTTPRoute, gateway\.networking\.k8s\.io\/v1\)/,
    );
    assert.equal(cond(s, 'Ready')?.status, 'True');
    // With a canary asking for traffic, CanaryReady says so too.
    const c = withCanary({ trafficPercent: 10 }, { gateway: GATEWAY });
    const ready = live(desiredCanaryDeployment(c, testConfig)!, {
      ...complete,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
    });
    ready.spec!.replicas = 1;
    const sc = statusOf(
      c,
      { deployment: ready, trafficPercent: 0, mirrorPercent: 0 },
      { gatewayMissing: true },
    );
    assert.equal(cond(sc, 'CanaryReady')?.reason, 'GatewayAPIMissing');
  });
});
