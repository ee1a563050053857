import { strict as assert } from 'node:assert';
import type { V1Deployment } from '@kubernetes/client-node';
import { desiredDeployment } from '../../src/reconcilers/deployment';
import { OperatorMetrics } from '../../src/metrics';
import { computeStatus } from '../../src/status';
import { fnolModel, testConfig } from '../fixtures';

const NOW = new Date('2026-01-02T03:04:05.000Z');

/** The fnol_model_condition series in the exposition text, as "namespace/name type status value" lines. */
async function conditionSeries(metrics: OperatorMetrics): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith('fnol_model_condition{'))
    .map((l) => {
      const m = /namespace="([^"]*)",name="([^"]*)",type="([^"]*)",status="([^"]*)"} (\S+)$/.exec(l);
      assert.ok(m, `unexpected series line: ${l}`);
      return `${m[1]}/${m[2]} ${m[3]} ${m[4]} ${m[5]}`;
    })
    .sort();
}

function deployment(status: V1Deployment['status']): V1Deployment {
  const fm = fnolModel();
  const d = desiredDeployment(fm, testConfig);
  d.metadata = { ...d.metadata, uid: 'dep-uid', generation: 1 };
  d.status = status;
  return d;
}

describe('operator metrics: fnol_model_condition', () => {
  it('exports one series per condition type and status, 1 for the current status', async () => {
    const metrics = new OperatorMetrics(false);
    const fm = fnolModel();
    const status = computeStatus({
      fm,
      deployment: deployment({}),
      replicaSets: [],
      blocked: { reason: 'ModelDigestMismatch', message: 'the file has sha256 x, spec.model.sha256 is y' },
      now: NOW,
    });
    metrics.setModelConditions('claims', 'fnol', status.conditions ?? []);
    const series = await conditionSeries(metrics);
    assert.ok(series.includes('claims/fnol Degraded True 1'), series.join('\n'));
    assert.ok(series.includes('claims/fnol Degraded False 0'), series.join('\n'));
    assert.ok(series.includes('claims/fnol Degraded Unknown 0'), series.join('\n'));
    // Three series for every condition the status carries, nothing else.
    assert.equal(series.length, 3 * (status.conditions ?? []).length);
    for (const c of status.conditions ?? []) {
      assert.ok(series.includes(`claims/fnol ${c.type} ${c.status} 1`), `${c.type} ${c.status} missing`);
    }
  });

  it('replaces the series of a FnolModel when its conditions change, and leaves other FnolModels alone', async () => {
    const metrics = new OperatorMetrics(false);
    metrics.setModelConditions('claims', 'fnol', [
      {
        type: 'Degraded',
        status: 'True',
        reason: 'ProgressDeadlineExceeded',
        message: 'x',
        lastTransitionTime: '',
      },
    ]);
    metrics.setModelConditions('claims', 'other', [
      { type: 'Ready', status: 'True', reason: 'Ready', message: 'x', lastTransitionTime: '' },
    ]);
    metrics.setModelConditions('claims', 'fnol', [
      { type: 'Degraded', status: 'False', reason: 'Ready', message: 'x', lastTransitionTime: '' },
    ]);
    assert.deepEqual(await conditionSeries(metrics), [
      'claims/fnol Degraded False 1',
      'claims/fnol Degraded True 0',
      'claims/fnol Degraded Unknown 0',
      'claims/other Ready False 0',
      'claims/other Ready True 1',
      'claims/other Ready Unknown 0',
    ]);
  });

  it('drops the series of a deleted FnolModel', async () => {
    const metrics = new OperatorMetrics(false);
    metrics.setModelConditions('claims', 'fnol', [
      {
        type: 'Degraded',
        status: 'True',
        reason: 'ProgressDeadlineExceeded',
        message: 'x',
        lastTransitionTime: '',
      },
      {
        type: 'Ready',
        status: 'False',
        reason: 'ProgressDeadlineExceeded',
        message: 'x',
        lastTransitionTime: '',
      },
    ]);
    metrics.forgetModel('claims', 'fnol');
    assert.deepEqual(await conditionSeries(metrics), []);
    metrics.forgetModel('claims', 'never-seen'); // no error for a FnolModel never recorded
  });
});
