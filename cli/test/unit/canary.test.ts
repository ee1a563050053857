import assert from 'node:assert/strict';
import {
  DEFAULT_THRESHOLDS,
  canaryState,
  describeCanary,
  earlyBreach,
  evaluate,
  formatPercent,
  parseAnalysis,
  planSteps,
  progressLine,
  startDecision,
} from '../../src/canary';
import { rollbackDecision } from '../../src/rollout';
import {
  API_VERSION,
  Annotations,
  KIND,
  type FnolModel,
  type FnolModelSpecCanary,
  type FnolModelStatus,
  type FnolModelStatusCanaryComparison,
} from '@fnol/api';

const m0 = {
  version: '1.0.0',
  uri: 'https://acct.blob.core.windows.net/models/fnol/1.0.0/fnol-1.0.0.onnx',
  sha256: 'a'.repeat(64),
};
const m1 = {
  version: '1.1.0',
  uri: 'https://acct.blob.core.windows.net/models/fnol/1.1.0/fnol-1.1.0.onnx',
  sha256: 'b'.repeat(64),
};

function fnolModel(opts: {
  canary?: Partial<FnolModelSpecCanary>;
  status?: FnolModelStatus;
  record?: unknown;
  model?: typeof m0;
  generation?: number;
}): FnolModel {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: 'fnol',
      namespace: 'claims',
      generation: opts.generation ?? 4,
      annotations: opts.record ? { [Annotations.promotion]: JSON.stringify(opts.record) } : {},
    },
    spec: {
      model: opts.model ?? m0,
      modelName: 'fnol',
      replicas: 2,
      resources: {},
      ...(opts.canary
        ? { canary: { model: m1, trafficPercent: 0, mirrorPercent: 100, ...opts.canary } }
        : {}),
    },
    status: opts.status,
  };
}

/** A comparison that passes the default thresholds. */
const good: FnolModelStatusCanaryComparison = {
  requests: 1200,
  dropped: 0,
  candidateErrors: 1,
  candidateErrorRate: 1 / 1201,
  stableLatencyP99Seconds: 0.04,
  candidateLatencyP99Seconds: 0.045,
  outputs: [
    {
      name: 'ultimate_cost',
      medianRelativeDifference: 0.00002,
      p95RelativeDifference: 0.004,
      threshold: 0.01,
      exceedingShare: 0.02,
    },
  ],
  pods: 2,
  updatedAt: '2026-12-01T10:00:00Z',
};

describe('progressive promote: analysis thresholds', function () {
  it('defaults every threshold and documents them in one place', function () {
    assert.deepEqual(parseAnalysis(undefined), {
      maxMedianDiff: 0.001,
      maxP95Diff: 0.01,
      maxExceedingShare: 0.05,
      maxErrorRate: 0.01,
      maxLatencyRatio: 2,
      minRequests: 100,
    });
    assert.deepEqual(parseAnalysis(undefined), DEFAULT_THRESHOLDS);
  });

  it('overrides the keys given, tolerating spaces', function () {
    const t = parseAnalysis(' maxP95Diff = 0.02 , minRequests=500,maxLatencyRatio=1.5');
    assert.equal(t.maxP95Diff, 0.02);
    assert.equal(t.minRequests, 500);
    assert.equal(t.maxLatencyRatio, 1.5);
    assert.equal(t.maxMedianDiff, DEFAULT_THRESHOLDS.maxMedianDiff);
  });

  it('refuses unknown keys, naming the known ones', function () {
    assert.throws(
      () => parseAnalysis('maxP99Diff=0.1'),
      (e: Error) =>
        /unknown key "maxP99Diff"/.test(e.message) &&
        /known: maxMedianDiff, maxP95Diff, maxExceedingShare, maxErrorRate, maxLatencyRatio, minRequests/.test(
          e.message,
        ),
    );
  });

  it('refuses bad values, each with what the key accepts, all at once', function () {
    const cases: [string, RegExp][] = [
      ['maxErrorRate=1%', /maxErrorRate="1%" must be a rate between 0 and 1/],
      ['maxErrorRate=2', /maxErrorRate="2" must be a rate between 0 and 1/],
      ['maxExceedingShare=-0.1', /maxExceedingShare="-0.1" must be a share between 0 and 1/],
      ['maxMedianDiff=', /maxMedianDiff="" must be a relative difference >= 0/],
      ['maxP95Diff=abc', /maxP95Diff="abc"/],
      ['maxLatencyRatio=0', /maxLatencyRatio="0" must be a ratio > 0/],
      ['minRequests=10.5', /minRequests="10.5" must be a whole number of requests >= 1/],
      ['minRequests=0', /minRequests="0"/],
      ['maxP95Diff=Infinity', /maxP95Diff="Infinity"/],
      ['maxP95Diff', /"maxP95Diff" is not KEY=VALUE/],
      ['maxP95Diff=0.1,maxP95Diff=0.2', /maxP95Diff is given twice/],
      ['maxP95Diff=0.1,', /an empty entry/],
      ['', /--analysis is empty/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseAnalysis(text), re, text);
    assert.throws(
      () => parseAnalysis('minRequests=0,bogus=1'),
      (e: Error) => /minRequests="0"/.test(e.message) && /unknown key "bogus"/.test(e.message),
    );
  });
});

describe('progressive promote: steps', function () {
  it('mirrors first, then each canary share with mirroring kept on', function () {
    assert.deepEqual(planSteps('100', '10,50'), [
      { label: 'mirror 100%', mirrorPercent: 100, trafficPercent: 0 },
      { label: 'canary 10%', mirrorPercent: 100, trafficPercent: 10 },
      { label: 'canary 50%', mirrorPercent: 100, trafficPercent: 50 },
    ]);
    assert.equal(planSteps('25', undefined).length, 1);
  });

  it('refuses a plan without --mirror, shares out of range or not increasing', function () {
    assert.throws(() => planSteps(undefined, '10'), /needs --mirror PERCENT/);
    assert.throws(() => planSteps('0', undefined), /--mirror "0" must be a whole percentage from 1 to 100/);
    assert.throws(() => planSteps('100', '10,101'), /--canary "101"/);
    assert.throws(() => planSteps('100', '10,,50'), /--canary ""/);
    assert.throws(() => planSteps('100', '50,10'), /must list increasing shares/);
    assert.throws(() => planSteps('12.5', undefined), /--mirror "12.5"/);
  });
});

describe('progressive promote: the threshold decision', function () {
  it('passes a comparison within every threshold and lists the figures', function () {
    const v = evaluate(good, DEFAULT_THRESHOLDS);
    assert.equal(v.pass, true);
    const names = v.figures.map((f) => f.what);
    assert.ok(names.includes('p95 relative difference of ultimate_cost'), names.join(', '));
    assert.ok(names.includes('candidate/stable p99 latency'));
  });

  it('fails each figure over its threshold, with value and threshold', function () {
    const bad: FnolModelStatusCanaryComparison = {
      ...good,
      candidateErrors: 30,
      candidateErrorRate: 0.025,
      candidateLatencyP99Seconds: 0.1,
      outputs: [
        {
          ...good.outputs![0]!,
          medianRelativeDifference: 0.003,
          p95RelativeDifference: 0.2,
          exceedingShare: 0.4,
        },
      ],
    };
    const v = evaluate(bad, DEFAULT_THRESHOLDS);
    assert.equal(v.pass, false);
    const failed = !v.pass ? v.failed : [];
    const by = Object.fromEntries(failed.map((f) => [f.what, `${f.value} ${f.limit}`]));
    assert.deepEqual(by, {
      'candidate error rate': '2.5% <= 1%',
      'candidate/stable p99 latency': 'x2.5 <= x2',
      'median relative difference of ultimate_cost': '0.3% <= 0.1%',
      'p95 relative difference of ultimate_cost': '20% <= 1%',
      'share over 1% of ultimate_cost': '40% <= 5%',
    });
  });

  it('fails on too few requests and on figures the operator did not report', function () {
    const few = evaluate({ ...good, requests: 50, candidateErrors: 0 }, DEFAULT_THRESHOLDS);
    assert.equal(few.pass, false);
    assert.deepEqual(!few.pass && few.failed.map((f) => `${f.what} ${f.value} ${f.limit}`), [
      'mirrored requests 50 >= 100',
    ]);
    const none = evaluate(undefined, DEFAULT_THRESHOLDS);
    assert.equal(none.pass, false);
    assert.ok(!none.pass && none.failed.some((f) => f.what === 'outputs compared'));
    assert.ok(!none.pass && none.failed.some((f) => f.value === 'not reported'));
    const noOutputs = evaluate({ ...good, outputs: [] }, DEFAULT_THRESHOLDS);
    assert.ok(!noOutputs.pass && noOutputs.failed.map((f) => f.what).includes('outputs compared'));
    const noLatency = evaluate({ ...good, stableLatencyP99Seconds: undefined }, DEFAULT_THRESHOLDS);
    assert.ok(!noLatency.pass && noLatency.failed[0]!.what === 'candidate/stable p99 latency');
  });

  it('takes the thresholds given: a looser p95 lets the same figures pass', function () {
    const c = { ...good, outputs: [{ ...good.outputs![0]!, p95RelativeDifference: 0.03 }] };
    assert.equal(evaluate(c, DEFAULT_THRESHOLDS).pass, false);
    assert.equal(evaluate(c, parseAnalysis('maxP95Diff=0.05')).pass, true);
  });

  it('stops early only on the error rate, and only with enough requests', function () {
    const failing = { ...good, requests: 90, candidateErrors: 20, candidateErrorRate: 20 / 110 };
    assert.deepEqual(earlyBreach(failing, DEFAULT_THRESHOLDS), {
      what: 'candidate error rate',
      value: '18%',
      limit: '<= 1%',
    });
    assert.equal(
      earlyBreach({ ...failing, requests: 10, candidateErrors: 5 }, DEFAULT_THRESHOLDS),
      undefined,
    );
    const diffs = { ...good, outputs: [{ ...good.outputs![0]!, p95RelativeDifference: 0.5 }] };
    assert.equal(
      earlyBreach(diffs, DEFAULT_THRESHOLDS),
      undefined,
      'differences wait for the end of the step',
    );
    assert.equal(earlyBreach(undefined, DEFAULT_THRESHOLDS), undefined);
  });

  it('formats percentages with two significant digits and the worst output in progress lines', function () {
    assert.equal(formatPercent(0), '0%');
    assert.equal(formatPercent(0.000012), '0.0012%');
    assert.equal(formatPercent(0.1234), '12%');
    assert.equal(formatPercent(undefined), '-');
    const line = progressLine(
      { label: 'mirror 100%', mirrorPercent: 100, trafficPercent: 0 },
      45_000,
      120_000,
      {
        ...good,
        outputs: [
          { name: 'a', medianRelativeDifference: 0.0001, p95RelativeDifference: 0.002 },
          { name: 'b', medianRelativeDifference: 0.0003, p95RelativeDifference: 0.001 },
        ],
      },
    );
    assert.equal(
      line,
      '  [mirror 100%] 45s/120s  requests 1200  median diff 0.03%  p95 diff 0.2%  errors 0.083%  latency x1.13',
    );
  });
});

describe('progressive promote: reading the candidate state', function () {
  const step = { label: 'canary 10%', mirrorPercent: 100, trafficPercent: 10 };
  const ready = (over: Partial<FnolModelStatus['canary']> = {}, cond: 'True' | 'False' = 'True') =>
    fnolModel({
      canary: { trafficPercent: 10 },
      status: {
        observedGeneration: 4,
        canary: { version: '1.1.0', readyReplicas: 1, trafficPercent: 10, mirrorPercent: 100, ...over },
        conditions: [
          {
            type: 'CanaryReady',
            status: cond,
            reason: cond === 'True' ? 'CandidateReady' : 'CandidateProgressing',
            message: 'm',
            observedGeneration: 4,
            lastTransitionTime: '2026-12-01T10:00:00Z',
          },
        ],
      },
    });

  it('is ready when CanaryReady is True for this generation and the step is applied', function () {
    assert.equal(canaryState(ready(), 4, m1, step).state, 'ready');
    assert.equal(canaryState(ready({ trafficPercent: 0 }), 4, m1, step).state, 'waiting');
    assert.equal(canaryState(ready({ version: '1.0.9' }), 4, m1, step).state, 'waiting');
    assert.equal(canaryState(ready({}, 'False'), 4, m1, step).state, 'waiting');
    assert.match(canaryState(ready(), 5, m1, step).summary, /not yet observed generation 5/);
  });

  it('notices when someone else changed or removed spec.canary', function () {
    assert.equal(canaryState(fnolModel({}), 4, m1, step).state, 'lost');
    const other = fnolModel({ canary: { model: { ...m1, version: '1.2.0' } } });
    assert.match(canaryState(other, 4, m1, step).summary, /now holds 1\.2\.0/);
  });
});

describe('progressive promote: one canary per promotion id', function () {
  const steps = planSteps('100', '10,50');

  it('starts when there is no canary and the candidate is not served', function () {
    assert.deepEqual(startDecision(fnolModel({}), m1, steps, 'run-1'), { action: 'start' });
  });

  it('resumes the canary of the same run at the step it reached instead of starting another', function () {
    const fm = fnolModel({
      canary: { trafficPercent: 10 },
      record: { id: 'run-1', from: m0, to: m1, state: 'canary' },
    });
    const d = startDecision(fm, m1, steps, 'run-1');
    assert.equal(d.action, 'resume');
    assert.equal(d.action === 'resume' && d.step, 1);
  });

  it("refuses another run's canary, or one without a record", function () {
    const fm = fnolModel({ canary: {}, record: { id: 'run-1', from: m0, to: m1, state: 'canary' } });
    const d = startDecision(fm, m1, steps, 'run-2');
    assert.equal(d.action, 'refuse');
    assert.match(d.action === 'refuse' ? d.reason : '', /already has a canary of 1\.1\.0 by promotion run-1/);
    assert.equal(startDecision(fnolModel({ canary: {} }), m1, steps, undefined).action, 'refuse');
  });

  it('does not start again a promotion that already ended', function () {
    for (const state of ['canary-stopped', 'restored', 'rolled-back']) {
      const d = startDecision(
        fnolModel({ record: { id: 'run-1', from: m0, to: m1, state } }),
        m1,
        steps,
        'run-1',
      );
      assert.equal(d.action, 'refuse', state);
      assert.equal(d.action === 'refuse' && d.exitCode, 5);
      assert.match(d.action === 'refuse' ? d.reason : '', /already ended .*new promotion id/);
    }
  });

  it('only waits when the candidate is already in spec.model', function () {
    const fm = fnolModel({ model: m1, record: { id: 'run-1', from: m0, to: m1, state: 'applied' } });
    assert.equal(startDecision(fm, m1, steps, 'run-1').action, 'promoted');
    assert.equal(startDecision(fnolModel({ model: m1 }), m1, steps, undefined).action, 'promoted');
  });

  it('the failure hook removes a canary its run left, once, and leaves one promote stopped', function () {
    const left = fnolModel({ canary: {}, record: { id: 'run-1', from: m0, to: m1, state: 'canary' } });
    const d = rollbackDecision(left, 'run-1');
    assert.equal(d.act && d.kind, 'canary');
    const stopped = fnolModel({ record: { id: 'run-1', from: m0, to: m1, state: 'canary-stopped' } });
    const s = rollbackDecision(stopped, 'run-1');
    assert.equal(s.act, false);
    assert.match(s.reason, /promote already stopped it/);
    const changed = fnolModel({
      canary: { model: { ...m1, version: '1.2.0' } },
      record: { id: 'run-1', from: m0, to: m1, state: 'canary' },
    });
    assert.match(rollbackDecision(changed, 'run-1').reason, /spec\.canary changed since .*not touching it/);
  });
});

describe('fnolctl status: the canary table', function () {
  it('shows spec and applied shares and one row per output', function () {
    const lines = describeCanary(
      fnolModel({
        canary: { trafficPercent: 10 },
        status: {
          canary: {
            version: '1.1.0',
            readyReplicas: 1,
            trafficPercent: 10,
            mirrorPercent: 100,
            comparison: good,
          },
        },
      }),
    );
    const text = lines.join('\n');
    assert.match(text, /canary spec {6}1\.1\.0: traffic 10%, mirror 100%/);
    assert.match(text, /1200 requests compared on 2 stable pods, 1 candidate errors, 0 dropped/);
    const header = lines.find((l) => l.includes('median diff'))!;
    for (const col of [
      'output',
      'requests',
      'p95 diff',
      'over threshold',
      'cand. errors',
      'p99 latency cand./stable',
    ]) {
      assert.ok(header.includes(col), `missing column ${col}: ${header}`);
    }
    const row = lines.find((l) => l.trim().startsWith('ultimate_cost'))!;
    assert.match(
      row,
      /ultimate_cost\s+1200\s+0\.002%\s+0\.4%\s+2% \(>1%\)\s+0\.083%\s+45 ms \/ 40 ms \(x1\.13\)/,
    );
  });

  it('prints status text from another program without control characters', function () {
    const lines = describeCanary(
      fnolModel({
        canary: {},
        status: {
          canary: {
            version: '1.1.0\u001b[2J',
            comparison: { ...good, outputs: [{ ...good.outputs![0]!, name: 'cost\u001b]0;owned\u0007' }] },
          },
        },
      }),
    ).join('\n');
    for (const line of lines.split('\n')) {
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(line, /[\u0000-\u001f]/);
    }
    assert.match(lines, /1\.1\.0\?\[2J/);
    assert.match(lines, /cost\?\]0;owned\?/);
    const v = evaluate(
      { ...good, outputs: [{ ...good.outputs![0]!, p95RelativeDifference: -1 }] },
      DEFAULT_THRESHOLDS,
    );
    assert.equal(v.pass, false, 'a negative difference passed');
  });

  it('says so when there is no canary or no comparison yet', function () {
    assert.deepEqual(describeCanary(fnolModel({})), []);
    assert.match(describeCanary(fnolModel({ canary: {} })).join('\n'), /comparison {7}none yet/);
  });
});
