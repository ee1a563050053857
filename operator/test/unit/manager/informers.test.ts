import { strict as assert } from 'node:assert';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Kinds } from '../../../../lib/api/src/index';
import { KubeClient } from '../../../src/kube/client';
import { Informer, newerOrSame } from '../../../src/manager/informers';

// The cache's bookkeeping without a server (list, watch and relist run against
// the real API server in operator/test/integration/informers.test.ts).
function unstarted(namespace?: string): Informer {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return new Informer(new KubeClient(kc), {
    kind: { ...Kinds.Service, kind: 'Service' },
    namespace,
    log: pino({ level: 'silent' }),
  });
}

const svc = (ns: string, name: string, rv: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { namespace: ns, name, resourceVersion: rv, labels, managedFields: [{ manager: 'x' }] },
});

describe('manager: informer cache', () => {
  it('compares resourceVersions as integers, and lets a non-integer one win', () => {
    assert.equal(newerOrSame('10', '9'), true);
    assert.equal(newerOrSame('9', '10'), false);
    assert.equal(newerOrSame('123456789012345678901', '123456789012345678900'), true);
    assert.equal(newerOrSame('10', '10'), true);
    assert.equal(newerOrSame('abc', '10'), true);
    assert.equal(newerOrSame(undefined, '10'), true);
  });

  it('keeps the newer of an observed write and what it holds, without managedFields', () => {
    const inf = unstarted('ns');
    inf.observe(svc('ns', 'a', '20'));
    inf.observe(svc('ns', 'a', '19')); // an older answer arriving late
    assert.equal(inf.get('ns', 'a')?.metadata?.resourceVersion, '20');
    assert.equal(inf.get('ns', 'a')?.metadata?.managedFields, undefined);
    inf.observe(svc('ns', 'a', '21'));
    assert.equal(inf.get('ns', 'a')?.metadata?.resourceVersion, '21');
  });

  it('ignores objects of a namespace it does not watch, and filters its list by labels', () => {
    const inf = unstarted('ns');
    inf.observe(svc('other', 'a', '1'));
    assert.equal(inf.size, 0);
    inf.observe(svc('ns', 'a', '1', { app: 'a', tier: 'x' }));
    inf.observe(svc('ns', 'b', '1', { app: 'b' }));
    assert.deepEqual(
      inf.list('ns', { app: 'a' }).map((o) => o.metadata?.name),
      ['a'],
    );
    assert.equal(inf.list('ns').length, 2);
    assert.equal(inf.list('other').length, 0);
  });
});
