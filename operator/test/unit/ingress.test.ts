import { strict as assert } from 'node:assert';
import { desiredIngress } from '../../src/reconcilers/ingress';
import { fnolModel } from '../fixtures';

/** path -> pathType of the Ingress's only rule. */
function routes(prefix: string | undefined): Record<string, string> {
  const ingress = desiredIngress(fnolModel({ ingress: { host: 'fnol.example.test', path: prefix ?? '/' } }));
  const rule = ingress?.spec?.rules?.[0];
  assert.equal(ingress?.spec?.rules?.length, 1);
  assert.equal(rule?.host, 'fnol.example.test');
  for (const p of rule?.http?.paths ?? []) {
    assert.equal(p.backend.service?.name, 'fnol');
    assert.deepEqual(p.backend.service?.port, { name: 'http' });
  }
  return Object.fromEntries((rule?.http?.paths ?? []).map((p) => [p.path ?? '', p.pathType]));
}

describe('reconcilers: ingress routes only the scoring and model paths', () => {
  it('publishes /score, /model, /openapi.json and /v2/models/..., nothing else', () => {
    assert.deepEqual(routes('/'), {
      '/score': 'Exact',
      '/model': 'Exact',
      '/openapi.json': 'Exact',
      '/v2/models': 'Prefix',
    });
    assert.deepEqual(routes(undefined), routes('/'));
  });

  it('keeps metrics and probes in the cluster: no path of the Ingress matches them', () => {
    const published = routes('/');
    const matches = (path: string) =>
      Object.entries(published).some(([p, type]) =>
        type === 'Exact' ? path === p : path === p || path.startsWith(`${p}/`),
      );
    for (const internal of [
      '/metrics',
      '/healthz',
      '/readyz',
      '/v2',
      '/v2/health/live',
      '/v2/health/ready',
      '/',
    ]) {
      assert.equal(matches(internal), false, internal);
    }
    for (const open of [
      '/score',
      '/v2/models/fnol/infer',
      '/v2/models/fnol/versions/1.0.0/infer',
      '/v2/models/fnol',
    ]) {
      assert.equal(matches(open), true, open);
    }
  });

  it('puts a path prefix in front of each route', () => {
    const expected = {
      '/claims/fnol/score': 'Exact',
      '/claims/fnol/model': 'Exact',
      '/claims/fnol/openapi.json': 'Exact',
      '/claims/fnol/v2/models': 'Prefix',
    };
    assert.deepEqual(routes('/claims/fnol'), expected);
    assert.deepEqual(routes('/claims/fnol/'), expected);
  });
});
