import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Kinds } from '@fnol/api';
import { KubeClient } from '../../../src/kube/client';
import { Informer, newerOrSame } from '../../../src/manager/informers';

// The cache's bookkeeping without a server (list, watch and relist run against
// the real API server in operator/test/integration/informers.test.ts).
function unstarted(namespace?: string, indexLabel?: string): Informer {
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
    ...(indexLabel !== undefined ? { indexLabel } : {}),
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

describe('manager: informer label index', () => {
  it('lists by the indexed label exactly as a scan would, through adds, relabels, watch deletes and other namespaces', () => {
    const inf = unstarted(undefined, 'app');
    const scan = unstarted(undefined);
    const watchEvent = (i: Informer, type: string, object: unknown) =>
      (i as unknown as { onWatchEvent(ev: { type: string; object: unknown }): void }).onWatchEvent({
        type,
        object,
      });
    const both = (f: (i: Informer) => void) => [inf, scan].forEach(f);
    for (let i = 0; i < 50; i++) {
      both((x) =>
        x.observe(
          svc(i % 2 ? 'ns' : 'other', `s${i}`, '1', { app: `a${i % 5}`, tier: i % 3 ? 'web' : 'db' }),
        ),
      );
    }
    both((x) => x.observe(svc('ns', 's1', '2', { app: 'a4', tier: 'web' }))); // relabelled
    both((x) => watchEvent(x, 'DELETED', svc('ns', 's3', '3', { app: 'a3' })));
    both((x) => watchEvent(x, 'MODIFIED', svc('ns', 's5', '4', { tier: 'web' }))); // label removed
    both((x) => x.observe(svc('ns', 's7', '1', { app: 'a0' }))); // older than cached: ignored
    const names = (i: Informer, ns: string, labels: Record<string, string>) =>
      i
        .list(ns, labels)
        .map((o) => o.metadata?.name)
        .sort();
    for (const ns of ['ns', 'other', 'none']) {
      for (const app of ['a0', 'a1', 'a2', 'a3', 'a4', 'a9']) {
        for (const labels of [{ app }, { app, tier: 'web' }] as Array<Record<string, string>>) {
          assert.deepEqual(
            names(inf, ns, labels),
            names(scan, ns, labels),
            `${ns} ${JSON.stringify(labels)}`,
          );
        }
      }
    }
    assert.deepEqual(names(inf, 'ns', { app: 'a4' }), ['s1', 's19', 's29', 's39', 's49', 's9']);
    assert.deepEqual(names(inf, 'ns', { app: 'a3' }), ['s13', 's23', 's33', 's43']);
  });
});

describe('manager: informer list+watch protocol (loopback server)', () => {
  // A real API server cannot be made to answer 410 on demand; this loopback
  // server speaks the list/watch protocol with scripted answers.
  let server: http.Server;
  const requests: string[] = [];
  let script: Array<(req: http.IncomingMessage, res: http.ServerResponse) => void> = [];

  before(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      const step = script.shift();
      if (step) step(req, res);
      else setTimeout(() => res.writeHead(200).end(), 5000).unref(); // an idle watch
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  function client(): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return new KubeClient(kc);
  }

  const list = (rv: string, names: string[]) => (_req: http.IncomingMessage, res: http.ServerResponse) =>
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(
      JSON.stringify({
        metadata: { resourceVersion: rv },
        items: names.map((n) => ({ metadata: { namespace: 'ns', name: n, resourceVersion: rv } })),
      }),
    );
  const stream = (lines: unknown[]) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    for (const l of lines) res.write(`${JSON.stringify(l)}\n`);
    res.end();
  };

  it('relists on 410 Gone (HTTP and ERROR event), follows bookmarks, and delivers the differences', async () => {
    requests.length = 0;
    script = [
      list('5', ['a', 'b']),
      // The first watch: a bookmark moves the version on, then the server ends it.
      stream([{ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } }]),
      // The next watch (from 7) is answered 410: list again.
      (_req, res) => res.writeHead(410, { 'Content-Type': 'application/json' }).end('{"reason":"Expired"}'),
      list('9', ['b', 'c']),
      // A 410 inside the stream, as an ERROR event.
      stream([{ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } }]),
      list('12', ['c']),
    ];
    const inf = new Informer(client(), {
      kind: { ...Kinds.Service, kind: 'Service' },
      namespace: 'ns',
      labelSelector: 'app.kubernetes.io/managed-by=fnol-operator',
      log: pino({ level: 'silent' }),
    });
    const events: string[] = [];
    inf.onEvent((type, obj) => events.push(`${type} ${obj.metadata?.name}`));
    await inf.start();
    const end = Date.now() + 5000;
    while (inf.lists < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    inf.stop();
    assert.equal(inf.lists, 3);
    assert.deepEqual(inf.keys(), ['ns/c']);
    // b and c changed version between lists: MODIFIED; what a list no longer has: DELETED.
    assert.deepEqual(events, [
      'ADDED a',
      'ADDED b',
      'MODIFIED b',
      'ADDED c',
      'DELETED a',
      'MODIFIED c',
      'DELETED b',
    ]);
    const q = requests.map((u) => new URL(u, 'http://x').searchParams);
    assert.ok(q.every((p) => p.get('labelSelector') === 'app.kubernetes.io/managed-by=fnol-operator'));
    assert.equal(q[1]!.get('watch'), 'true');
    assert.equal(q[1]!.get('resourceVersion'), '5');
    assert.equal(q[1]!.get('allowWatchBookmarks'), 'true');
    assert.equal(q[2]!.get('resourceVersion'), '7', 'the next watch starts from the bookmark');
    assert.equal(q[3]!.get('watch'), null, 'a list after 410');
    assert.equal(q[4]!.get('resourceVersion'), '9');
  });
  it('an optional kind answered 404 is synced, empty and unavailable, and is listed again until it is served', async () => {
    requests.length = 0;
    const notFound = (_req: http.IncomingMessage, res: http.ServerResponse) =>
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"reason":"NotFound"}');
    script = [notFound, notFound, list('3', ['route'])];
    const inf = new Informer(client(), {
      kind: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', kind: 'HTTPRoute' },
      namespace: 'ns',
      optional: true,
      absentRetryMs: 50,
      log: pino({ level: 'silent' }),
    });
    await inf.start();
    assert.equal(inf.synced, true, 'a missing kind does not hold readiness');
    assert.equal(inf.available, false);
    assert.equal(inf.size, 0);
    const end = Date.now() + 5000;
    while (!inf.available && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    inf.stop();
    assert.equal(inf.available, true, 'listed again, and served now');
    assert.deepEqual(inf.keys(), ['ns/route']);
    assert.equal(inf.lists, 1, 'the 404 answers are not counted as lists');
    assert.ok(
      requests
        .slice(0, 3)
        .every((u) => u.startsWith('/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes')),
    );
  });

  it('a kind that is not optional keeps retrying a 404 and is not synced', async () => {
    requests.length = 0;
    script = [(_req, res) => res.writeHead(404).end('{}')];
    const inf = new Informer(client(), {
      kind: { ...Kinds.Service, kind: 'Service' },
      namespace: 'ns',
      log: pino({ level: 'silent' }),
    });
    void inf.start();
    const end = Date.now() + 2000;
    while (requests.length < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(inf.synced, false);
    inf.stop();
    assert.equal(inf.lists, 0);
    assert.equal(inf.available, true);
  });
});
