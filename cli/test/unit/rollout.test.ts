import assert from 'node:assert/strict';
import {
  PREVIOUS_MODEL_ANNOTATION,
  applyBody,
  describeStatus,
  exampleRequest,
  modelFromPublishResult,
  previousModel,
  rolloutState,
  sameModel,
  validateModelSpec,
  type FnolModelObject,
} from '../../src/rollout';
import { waitForRollout } from '../../src/promote';
import type { FnolModelApi } from '../../src/fnolmodels';

const SHA = 'a'.repeat(64);
const m1 = {
  version: '1.0.0',
  uri: 'https://acct.blob.core.windows.net/models/fnol/1.0.0/fnol-1.0.0.onnx',
  sha256: SHA,
};

function fm(status: FnolModelObject['status'], generation = 2): FnolModelObject {
  return { metadata: { name: 'fnol', namespace: 'claims', generation }, spec: { model: m1 }, status };
}

describe('fnolctl rollout logic', function () {
  it('validates a model spec and names every bad field', function () {
    assert.deepEqual(validateModelSpec(m1, 'x'), m1);
    assert.throws(
      () => validateModelSpec({ version: '1.0 beta', uri: 'ftp://x/y', sha256: 'ABC' }, 'the command line'),
      (err: Error) =>
        /invalid model from the command line/.test(err.message) &&
        /version "1.0 beta"/.test(err.message) &&
        /uri "ftp:\/\/x\/y"/.test(err.message) &&
        /sha256 "ABC"/.test(err.message),
    );
    assert.throws(
      () => validateModelSpec({ ...m1, uri: `${m1.uri}?sv=2024&sig=abc` }, 'x'),
      /must not carry a SAS token/,
    );
  });

  it('reads the model from a publish result', function () {
    const model = modelFromPublishResult(
      { name: 'fnol', status: 'published', ...m1, modelCard: {} },
      'publish.json',
    );
    assert.deepEqual(model, m1);
    assert.throws(() => modelFromPublishResult([], 'p.json'), /invalid model from p.json/);
  });

  it('applies only spec.model and the previous-model annotation', function () {
    const prev = { ...m1, version: '0.9.0' };
    const body = applyBody('fnol', 'claims', m1, prev);
    assert.deepEqual(body, {
      apiVersion: 'serving.fnol.io/v1alpha1',
      kind: 'FnolModel',
      metadata: {
        name: 'fnol',
        namespace: 'claims',
        annotations: { [PREVIOUS_MODEL_ANNOTATION]: JSON.stringify(prev) },
      },
      spec: { model: m1 },
    });
    const fmWithPrev: FnolModelObject = {
      metadata: {
        name: 'fnol',
        namespace: 'claims',
        annotations: body.metadata
          ? (body.metadata as { annotations: Record<string, string> }).annotations
          : {},
      },
      spec: { model: m1 },
    };
    assert.deepEqual(previousModel(fmWithPrev), prev);
    assert.equal(previousModel(fm({})), undefined);
    assert.deepEqual(Object.keys(applyBody('fnol', 'claims', m1, undefined).metadata as object), [
      'name',
      'namespace',
    ]);
  });

  it('compares models including their credentials', function () {
    assert.ok(sameModel(m1, { ...m1 }));
    assert.ok(!sameModel(m1, { ...m1, credentialsSecretRef: { name: 'sas' } }));
    assert.ok(!sameModel(m1, { ...m1, sha256: 'b'.repeat(64) }));
  });

  it('is Ready only when the operator observed the generation and serves the version', function () {
    const ready = { observedGeneration: 2, phase: 'Ready', activeVersion: '1.0.0', readyReplicas: 2 };
    assert.equal(rolloutState(fm(ready), 2, '1.0.0').state, 'ready');
    // Status from before the edit does not count, even if it says Ready.
    assert.equal(rolloutState(fm({ ...ready, observedGeneration: 1 }), 2, '1.0.0').state, 'waiting');
    assert.equal(rolloutState(fm({ ...ready, activeVersion: '0.9.0' }), 2, '1.0.0').state, 'waiting');
    assert.equal(rolloutState(fm({ ...ready, phase: 'Progressing' }), 2, '1.0.0').state, 'waiting');
    const degraded = rolloutState(
      fm({
        observedGeneration: 2,
        phase: 'Degraded',
        conditions: [
          { type: 'Degraded', status: 'True', reason: 'ModelDigestMismatch', message: 'sha256 differs' },
        ],
      }),
      2,
      '1.0.0',
    );
    assert.equal(degraded.state, 'degraded');
    assert.match(degraded.summary, /ModelDigestMismatch: sha256 differs/);
    assert.equal(rolloutState(fm(undefined), 1, '1.0.0').state, 'waiting');
  });

  it('waits with progress lines and gives up at the timeout', async function () {
    let t = 0;
    const states = [
      { observedGeneration: 1, phase: 'Ready', activeVersion: '0.9.0' },
      { observedGeneration: 2, phase: 'Progressing', activeVersion: '0.9.0' },
    ];
    let calls = 0;
    const api: FnolModelApi = {
      get: async () => fm(states[Math.min(calls++, states.length - 1)]),
      apply: async () => assert.fail('no apply while waiting'),
    };
    const lines: string[] = [];
    const out = await waitForRollout(api, 'claims', 'fnol', 2, '1.0.0', {
      timeoutMs: 10_000,
      pollMs: 1000,
      heartbeatMs: 5000,
      log: (l) => lines.push(l),
      now: () => t,
      sleep: async (ms) => void (t += ms),
    });
    assert.equal(out.state, 'timeout');
    assert.match(out.summary, /not Ready after 10s/);
    assert.match(lines[0]!, /has not yet observed generation 2/);
    assert.match(lines[1]!, /phase Progressing/);
    assert.ok(lines.length >= 3 && lines.length <= 5, `progress lines: ${lines.length}`);
  });

  it('describes status and builds the example request', function () {
    const lines = describeStatus(
      fm({
        observedGeneration: 2,
        phase: 'Ready',
        activeVersion: '1.0.0',
        readyReplicas: 2,
        url: 'https://fnol.example',
      }),
    );
    assert.match(lines.join('\n'), /active version {3}1\.0\.0[\s\S]*url {14}https:\/\/fnol\.example/);
    const req = exampleRequest();
    assert.equal(req.data.length, 2);
    assert.equal(req.data[0]!.length, 37);
    assert.equal(req.data[0]![0], 1);
    assert.equal(req.data[1]![0], 37);
  });
});
