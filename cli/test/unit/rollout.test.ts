import assert from 'node:assert/strict';
import {
  applyBody,
  promotionRecord,
  rollbackDecision,
  validatePromotionId,
  describeStatus,
  exampleRequest,
  modelFromPublishResult,
  previousModel,
  rolloutState,
  validateModelSpec,
} from '../../src/rollout';
import { waitForRollout } from '../../src/promote';
import {
  API_VERSION,
  Annotations,
  KIND,
  sameModelSpec,
  type FnolModel,
  type FnolModelStatus,
} from '@fnol/api';
import type { FnolModelApi } from '../../src/fnolmodels';

const SHA = 'a'.repeat(64);
const m1 = {
  version: '1.0.0',
  uri: 'https://acct.blob.core.windows.net/models/fnol/1.0.0/fnol-1.0.0.onnx',
  sha256: SHA,
};
/** The fields the CRD defaults, as the API server returns them. */
const DEFAULTED = {
  modelName: 'fnol',
  replicas: 2,
  resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
};

function fm(status: FnolModel['status'], generation = 2): FnolModel {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: 'fnol', namespace: 'claims', generation },
    spec: { ...DEFAULTED, model: m1 },
    status,
  };
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
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: {
        name: 'fnol',
        namespace: 'claims',
        annotations: { [Annotations.previousModel]: JSON.stringify(prev) },
      },
      spec: { model: m1 },
    });
    const fmWithPrev: FnolModel = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: {
        name: 'fnol',
        namespace: 'claims',
        annotations: body.metadata
          ? (body.metadata as { annotations: Record<string, string> }).annotations
          : {},
      },
      spec: { ...DEFAULTED, model: m1 },
    };
    assert.deepEqual(previousModel(fmWithPrev), prev);
    assert.equal(previousModel(fm({})), undefined);
    assert.deepEqual(Object.keys(applyBody('fnol', 'claims', m1, undefined).metadata as object), [
      'name',
      'namespace',
    ]);
  });

  it('compares models including their credentials', function () {
    assert.ok(sameModelSpec(m1, { ...m1 }));
    assert.ok(!sameModelSpec(m1, { ...m1, credentialsSecretRef: { name: 'sas' } }));
    assert.ok(!sameModelSpec(m1, { ...m1, sha256: 'b'.repeat(64) }));
  });

  it('is Ready only when the operator observed the generation and serves the version', function () {
    const ready: FnolModelStatus = {
      observedGeneration: 2,
      phase: 'Ready',
      activeVersion: '1.0.0',
      readyReplicas: 2,
    };
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
          {
            type: 'Degraded',
            status: 'True',
            reason: 'ModelDigestMismatch',
            message: 'sha256 differs',
            lastTransitionTime: '2026-01-01T00:00:00Z',
          },
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
    const states: FnolModelStatus[] = [
      { observedGeneration: 1, phase: 'Ready', activeVersion: '0.9.0' },
      { observedGeneration: 2, phase: 'Progressing', activeVersion: '0.9.0' },
    ];
    let calls = 0;
    const api: FnolModelApi = {
      get: async () => fm(states[Math.min(calls++, states.length - 1)]),
      apply: async () => assert.fail('no apply while waiting'),
      patch: async () => assert.fail('no patch while waiting'),
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

  describe('the promotion record: what one pipeline run promoted, rolled back at most once', function () {
    const m0 = { ...m1, version: '0.9.0', sha256: 'c'.repeat(64) };
    const withRecord = (record: unknown, model = m1): FnolModel => ({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: {
        name: 'fnol',
        namespace: 'claims',
        generation: 3,
        resourceVersion: '42',
        annotations: { [Annotations.promotion]: JSON.stringify(record) },
      },
      spec: { ...DEFAULTED, model },
    });

    it('accepts promotion ids a pipeline makes and refuses anything else', function () {
      assert.equal(
        validatePromotionId('20261201.3-DeployProd-1', '--promotion-id'),
        '20261201.3-DeployProd-1',
      );
      for (const bad of ['', ' ', 'a b', '$(promotionId)', 'x'.repeat(129), '-lead', 'a/b']) {
        assert.throws(
          () => validatePromotionId(bad, '--if-promoted-by'),
          /--if-promoted-by ".*" is not a promotion id/,
          bad,
        );
      }
    });

    it('is written in the same apply as spec.model, with the resourceVersion as a precondition', function () {
      const record = { id: 'run-1', from: m0, to: m1, state: 'applied' as const };
      const body = applyBody('fnol', 'claims', m1, m0, { record, resourceVersion: '42' });
      const meta = body.metadata as { resourceVersion?: string; annotations: Record<string, string> };
      assert.equal(meta.resourceVersion, '42');
      assert.deepEqual(JSON.parse(meta.annotations[Annotations.promotion]!), record);
      assert.deepEqual(JSON.parse(meta.annotations[Annotations.previousModel]!), m0);
      assert.deepEqual(promotionRecord(withRecord(record)), record);
    });

    it('ignores a malformed record instead of acting on it', function () {
      assert.equal(promotionRecord(fm({})), undefined);
      assert.equal(
        promotionRecord(withRecord({ id: 'run-1', from: m0, to: m1, state: 'sideways' })),
        undefined,
      );
      assert.equal(promotionRecord(withRecord({ id: 'run-1', from: { version: 'x' }, to: m1 })), undefined);
      const broken = withRecord({});
      broken.metadata.annotations![Annotations.promotion] = '{not json';
      assert.equal(promotionRecord(broken), undefined);
    });

    it('is shown by fnolctl status', function () {
      const lines = describeStatus(withRecord({ id: 'run-1', from: m0, to: m1, state: 'restored' }));
      assert.ok(lines.includes('  last promotion   run-1: 0.9.0 -> 1.0.0 (restored)'), lines.join('\n'));
    });

    it('rolls back only a promotion this run applied and nobody has undone', function () {
      const applied = { id: 'run-1', from: m0, to: m1, state: 'applied' };
      const act = rollbackDecision(withRecord(applied), 'run-1');
      assert.equal(act.act, true);
      assert.deepEqual(act.act && act.kind === 'model' && act.to, m0);
      assert.match(act.reason, /run-1 promoted 0\.9\.0 -> 1\.0\.0/);

      const cases: [string, FnolModel, RegExp][] = [
        ['no record at all', fm({}), /no promotion record/],
        ['another run', withRecord(applied), /made by another-run|was made by run-1, not another-run/],
        ['promote restored it', withRecord({ ...applied, state: 'restored' }), /already restored 0\.9\.0/],
        ['rolled back before', withRecord({ ...applied, state: 'rolled-back' }), /already rolled back/],
        ['spec changed since', withRecord(applied, { ...m1, version: '2.0.0' }), /now 2\.0\.0.*not touching/],
      ];
      for (const [what, obj, reason] of cases) {
        const id = what === 'another run' ? 'another-run' : 'run-1';
        const d = rollbackDecision(obj, id);
        assert.equal(d.act, false, what);
        assert.match(d.reason, reason, what);
      }
    });
  });
});
