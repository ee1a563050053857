import { strict as assert } from 'node:assert';
import { resourceOf } from '../../src/kube/client';
import { isSubset, quantityValue, upToDate, withAppliedHash } from '../../src/kube/compare';
import { fnolModelPath } from '@fnol/api';

describe('apply skipping (compare)', () => {
  it('ignores fields the API server added', () => {
    assert.ok(isSubset({ a: 1, b: { c: 'x' } }, { a: 1, b: { c: 'x', d: 2 }, status: {} }));
  });

  it('sees drift in a field we set', () => {
    assert.ok(!isSubset({ spec: { image: 'a:1' } }, { spec: { image: 'b:1' } }));
    assert.ok(!isSubset({ list: [1, 2] }, { list: [1] }));
  });

  it('compares resource quantities by value, other strings exactly', () => {
    assert.equal(quantityValue('500m'), 0.5);
    assert.equal(quantityValue('1Gi'), 2 ** 30);
    assert.ok(isSubset({ resources: { limits: { cpu: '1' } } }, { resources: { limits: { cpu: '1000m' } } }));
    assert.ok(!isSubset({ env: [{ value: '1.1' }] }, { env: [{ value: '1.10' }] }));
  });

  it('applies when the recorded hash differs even if the live object is a superset', () => {
    const desired = withAppliedHash({ metadata: { annotations: { a: 'x' } }, spec: { a: 1 } });
    const live = { ...desired, metadata: { ...desired.metadata } };
    assert.ok(upToDate(desired, live));
    const changed = withAppliedHash({ metadata: { annotations: { a: 'x' } }, spec: {} });
    assert.ok(!upToDate(changed, live));
  });
});

describe('request metrics', () => {
  it('names the resource of a request path', () => {
    assert.equal(resourceOf('/apis/apps/v1/namespaces/ns/deployments/fnol'), 'deployments');
    assert.equal(resourceOf('/api/v1/namespaces/ns/services'), 'services');
    assert.equal(resourceOf(fnolModelPath('ns', 'fnol', 'status')), 'fnolmodels/status');
    assert.equal(resourceOf('/apis/coordination.k8s.io/v1/namespaces/ns/leases/x?y=1'), 'leases');
  });
});
