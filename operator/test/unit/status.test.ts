import { strict as assert } from 'node:assert';
import type { V1Deployment, V1ReplicaSet } from '@kubernetes/client-node';
import { type FnolModel, Labels } from '@fnol/api';
import { mergePatchOf } from '../../src/controller';
import { desiredDeployment } from '../../src/reconcilers/deployment';
import { computeStatus, readyVersions, statusEqual, transitionEvents } from '../../src/status';
import { fnolModel, SHA_B, testConfig } from '../fixtures';

const NOW = new Date('2026-01-02T03:04:05.000Z');

function liveDeployment(fm: FnolModel, status: V1Deployment['status'], generation = 1): V1Deployment {
  const d = desiredDeployment(fm, testConfig);
  d.metadata = { ...d.metadata, uid: 'dep-uid', generation };
  d.status = status;
  return d;
}

function rs(version: string, ready: number, owner = 'dep-uid'): V1ReplicaSet {
  return {
    metadata: {
      name: `fnol-${version}`,
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'fnol', uid: owner, controller: true },
      ],
    },
    spec: { selector: {}, template: { metadata: { labels: { [Labels.modelVersion]: version } } } },
    status: { replicas: ready, readyReplicas: ready },
  };
}

const complete = {
  observedGeneration: 1,
  replicas: 2,
  updatedReplicas: 2,
  readyReplicas: 2,
  availableReplicas: 2,
  conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' }],
};

function cond(s: ReturnType<typeof computeStatus>, type: string) {
  return s.conditions?.find((c) => c.type === type);
}

describe('status', () => {
  it('Pending before the Deployment controller has seen the Deployment', () => {
    const fm = fnolModel();
    const s = computeStatus({ fm, deployment: liveDeployment(fm, {}), replicaSets: [], now: NOW });
    assert.equal(s.phase, 'Pending');
    assert.equal(cond(s, 'Progressing')?.status, 'True');
    assert.equal(s.activeVersion, undefined);
  });

  it('Ready with activeVersion, URL and ready replicas once the rollout is complete', () => {
    const fm = fnolModel({ ingress: { host: 'fnol.example.test', path: '/' } });
    const s = computeStatus({
      fm,
      deployment: liveDeployment(fm, complete),
      replicaSets: [rs('1.0.0', 2)],
      now: NOW,
    });
    assert.equal(s.phase, 'Ready');
    assert.equal(s.activeVersion, '1.0.0');
    assert.equal(s.readyReplicas, 2);
    assert.equal(s.url, 'http://fnol.example.test/');
    assert.equal(s.observedGeneration, 1);
    assert.equal(cond(s, 'Ready')?.status, 'True');
    assert.equal(cond(s, 'Ready')?.reason, 'RolloutComplete');
    assert.equal(cond(s, 'Degraded')?.status, 'False');
    assert.equal(cond(s, 'Ready')?.lastTransitionTime, '2026-01-02T03:04:05Z');
    assert.equal(s.selector, 'app.kubernetes.io/name=fnol-scorer,app.kubernetes.io/instance=fnol');
  });

  it('Progressing while a new version rolls out; Ready stays True and activeVersion the old one until it is complete', () => {
    const fm = fnolModel();
    fm.spec.model = { version: '1.1.0', uri: 'https://models.example.test/b.onnx', sha256: SHA_B };
    const dep = liveDeployment(
      fm,
      { ...complete, observedGeneration: 2, updatedReplicas: 1, replicas: 3 },
      2,
    );
    const s = computeStatus({ fm, deployment: dep, replicaSets: [rs('1.0.0', 2), rs('1.1.0', 1)], now: NOW });
    assert.equal(s.phase, 'Progressing');
    assert.equal(s.activeVersion, '1.0.0');
    assert.equal(cond(s, 'Progressing')?.status, 'True');
    assert.equal(cond(s, 'Progressing')?.reason, 'RollingOut');
    assert.equal(cond(s, 'Ready')?.status, 'True');
    assert.equal(cond(s, 'Ready')?.reason, 'PreviousVersionServing');
    assert.match(cond(s, 'Ready')?.message ?? '', /^version 1\.0\.0 serves while version 1\.1\.0 rolls out/);
    // Only the new version's pods are left, but old pods still terminate: not complete, yet 1.1.0 serves.
    const last = computeStatus({
      fm,
      deployment: liveDeployment(fm, { ...complete, observedGeneration: 2, replicas: 3 }, 2),
      replicaSets: [rs('1.1.0', 2)],
      now: NOW,
    });
    assert.equal(last.activeVersion, '1.1.0');
    assert.equal(last.phase, 'Progressing');
    // Once complete: the new version, Ready with RolloutComplete.
    const done = computeStatus({
      fm,
      deployment: liveDeployment(fm, { ...complete, observedGeneration: 2 }, 2),
      replicaSets: [rs('1.0.0', 0), rs('1.1.0', 2)],
      now: NOW,
    });
    assert.equal(done.phase, 'Ready');
    assert.equal(done.activeVersion, '1.1.0');
    assert.equal(cond(done, 'Ready')?.reason, 'RolloutComplete');
    // The status already named the old version: it stays while both serve.
    fm.status = { activeVersion: '1.0.0' };
    const both = computeStatus({
      fm,
      deployment: dep,
      replicaSets: [rs('1.1.0', 1), rs('1.0.0', 2)],
      now: NOW,
    });
    assert.equal(both.activeVersion, '1.0.0');
    // A first rollout (no pod ready yet): not Ready.
    const fresh = computeStatus({
      fm: fnolModel(),
      deployment: liveDeployment(fnolModel(), { observedGeneration: 1, replicas: 2, updatedReplicas: 2 }),
      replicaSets: [rs('1.0.0', 0)],
      now: NOW,
    });
    assert.equal(cond(fresh, 'Ready')?.status, 'False');
    assert.equal(cond(fresh, 'Ready')?.reason, 'WaitingForPods');
    // Not yet observed by the Deployment controller: also Progressing.
    const s2 = computeStatus({
      fm,
      deployment: liveDeployment(fm, complete, 2),
      replicaSets: [rs('1.0.0', 2)],
      now: NOW,
    });
    assert.equal(s2.phase, 'Progressing');
    assert.equal(s2.activeVersion, '1.0.0');
  });

  it('Degraded with the reason while a blocked model leaves the previous version serving', () => {
    const old = fnolModel();
    const dep = liveDeployment(old, complete);
    const fm = fnolModel();
    fm.spec.model = { version: '1.1.0', uri: 'https://models.example.test/b.onnx', sha256: SHA_B };
    const s = computeStatus({
      fm,
      deployment: dep,
      replicaSets: [rs('1.0.0', 2)],
      blocked: { reason: 'ModelDigestMismatch', message: 'the file has sha256 x, spec.model.sha256 is y' },
      now: NOW,
    });
    assert.equal(s.phase, 'Degraded');
    assert.equal(s.activeVersion, '1.0.0');
    assert.equal(cond(s, 'Degraded')?.reason, 'ModelDigestMismatch');
    assert.equal(cond(s, 'Ready')?.reason, 'PreviousVersionServing');
    assert.match(
      cond(s, 'Ready')?.message ?? '',
      /version 1\.0\.0 still serves; version 1\.1\.0 is not rolled out/,
    );
  });

  it('Progressing/VerifyingModel while the new model is downloaded for its check', () => {
    const old = fnolModel();
    const fm = fnolModel();
    fm.spec.model = { version: '1.1.0', uri: 'https://models.example.test/b.onnx', sha256: SHA_B };
    const s = computeStatus({
      fm,
      deployment: liveDeployment(old, complete),
      replicaSets: [rs('1.0.0', 2)],
      verifying: true,
      now: NOW,
    });
    assert.equal(s.phase, 'Progressing');
    assert.equal(cond(s, 'Progressing')?.status, 'True');
    assert.equal(cond(s, 'Progressing')?.reason, 'VerifyingModel');
    assert.equal(cond(s, 'Ready')?.reason, 'PreviousVersionServing');
    // A routine rollout: the serving version keeps Ready True.
    assert.equal(cond(s, 'Ready')?.status, 'True');
    assert.equal(cond(s, 'Degraded')?.status, 'False');
    const fresh = computeStatus({ fm, deployment: undefined, replicaSets: [], verifying: true, now: NOW });
    assert.equal(fresh.phase, 'Pending');
    assert.equal(cond(fresh, 'Ready')?.reason, 'VerifyingModel');
    assert.equal(cond(fresh, 'Ready')?.status, 'False');
  });

  it('Degraded when the progress deadline passes or every pod is gone', () => {
    const fm = fnolModel();
    const stuck = liveDeployment(fm, {
      ...complete,
      updatedReplicas: 1,
      conditions: [
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "x" has timed out progressing.',
        },
      ],
    });
    const s = computeStatus({ fm, deployment: stuck, replicaSets: [], now: NOW });
    assert.equal(s.phase, 'Degraded');
    assert.equal(cond(s, 'Degraded')?.reason, 'ProgressDeadlineExceeded');
    // A stuck new version while the previous one still has ready pods: Ready says so.
    const next = fnolModel();
    next.spec.model = { version: '1.1.0', uri: 'https://models.example.test/b.onnx', sha256: SHA_B };
    const s1 = computeStatus({
      fm: next,
      deployment: stuck,
      replicaSets: [rs('1.0.0', 2), rs('1.1.0', 0)],
      now: NOW,
    });
    assert.equal(s1.phase, 'Degraded');
    assert.equal(s1.activeVersion, '1.0.0');
    assert.equal(cond(s1, 'Ready')?.status, 'False');
    assert.match(
      cond(s1, 'Ready')?.message ?? '',
      /^version 1\.0\.0 still serves; version 1\.1\.0: ReplicaSet "x" has timed out/,
    );
    const gone = liveDeployment(fm, { ...complete, readyReplicas: 0, availableReplicas: 0 });
    const s2 = computeStatus({ fm, deployment: gone, replicaSets: [rs('1.0.0', 0)], now: NOW });
    assert.equal(s2.phase, 'Degraded');
    assert.equal(cond(s2, 'Degraded')?.reason, 'NoReadyReplicas');
  });

  it('keeps lastTransitionTime while a condition keeps its status, so an unchanged world writes nothing', () => {
    const fm = fnolModel();
    const first = computeStatus({
      fm,
      deployment: liveDeployment(fm, complete),
      replicaSets: [rs('1.0.0', 2)],
      now: NOW,
    });
    fm.status = first;
    const later = computeStatus({
      fm,
      deployment: liveDeployment(fm, complete),
      replicaSets: [rs('1.0.0', 2)],
      now: new Date(NOW.getTime() + 60_000),
    });
    assert.ok(statusEqual(first, later));
  });

  it('readyVersions ignores ReplicaSets of other Deployments and without ready pods', () => {
    const fm = fnolModel();
    const dep = liveDeployment(fm, complete);
    assert.deepEqual(readyVersions(dep, [rs('1.0.0', 2), rs('0.9.0', 0), rs('2.0.0', 1, 'other')]), [
      '1.0.0',
    ]);
  });

  it('records events on transitions only', () => {
    const fm = fnolModel();
    const ready = computeStatus({
      fm,
      deployment: liveDeployment(fm, complete),
      replicaSets: [rs('1.0.0', 2)],
      now: NOW,
    });
    const ev = transitionEvents(undefined, ready);
    assert.deepEqual(
      ev.map((e) => e.reason),
      ['Ready'],
    );
    assert.deepEqual(transitionEvents(ready, ready), []);
    const degraded = computeStatus({
      fm,
      deployment: liveDeployment(fm, complete),
      replicaSets: [rs('1.0.0', 2)],
      blocked: { reason: 'ModelUnreachable', message: 'GET failed' },
      now: NOW,
    });
    const ev2 = transitionEvents(ready, degraded);
    assert.deepEqual(
      ev2.map((e) => [e.type, e.reason]),
      [['Warning', 'ModelUnreachable']],
    );
  });
});

describe('status writes: the merge patch', () => {
  it('sends removed keys as null at any depth and replaces arrays', () => {
    const prev = {
      phase: 'Ready',
      activeVersion: '1.0.0',
      canary: { version: '1.1.0', comparison: { requests: 3 }, mirrorPercent: 100 },
      conditions: [{ type: 'Ready' }, { type: 'CanaryReady' }],
    };
    const next = {
      phase: 'Ready',
      canary: { version: '1.1.0', mirrorPercent: 0 },
      conditions: [{ type: 'Ready' }],
    };
    assert.deepEqual(mergePatchOf(prev, next), {
      phase: 'Ready',
      canary: { version: '1.1.0', mirrorPercent: 0, comparison: null },
      conditions: [{ type: 'Ready' }],
      activeVersion: null,
    });
    assert.deepEqual(mergePatchOf({}, { canary: { version: 'x' } }), { canary: { version: 'x' } });
    assert.deepEqual(mergePatchOf({ canary: { version: 'x' } }, {}), { canary: null });
  });
});
