// The scorer's NetworkPolicy: ingress from the ingress controller and
// monitoring only; egress to cluster DNS and the model store only, both set by
// the cluster admin on the operator (never by the FnolModel).
import { strict as assert } from 'node:assert';
import { ConfigError, loadConfig } from '../../src/config';
import { desiredNetworkPolicy } from '../../src/reconcilers/networkpolicy';
import { fnolModel, testConfig } from '../fixtures';

describe('reconcilers: networkpolicy egress', () => {
  it('limits egress to cluster DNS and the model store', () => {
    const np = desiredNetworkPolicy(fnolModel(), {
      ...testConfig,
      modelStoreCidrs: ['10.20.0.4/32', '10.21.0.0/24'],
      modelStorePorts: [443],
    });
    assert.deepEqual(np.spec?.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(np.spec?.egress, [
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          },
        ],
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      },
      {
        to: [{ ipBlock: { cidr: '10.20.0.4/32' } }, { ipBlock: { cidr: '10.21.0.0/24' } }],
        ports: [{ protocol: 'TCP', port: 443 }],
      },
    ]);
    // The ingress side is unchanged: the scorer port from the configured namespaces.
    assert.equal(np.spec?.ingress?.[0]?.ports?.[0]?.port, 8080);
  });

  it('follows the DNS namespace and labels the admin configured', () => {
    const np = desiredNetworkPolicy(fnolModel(), {
      ...testConfig,
      dnsNamespace: 'dns',
      dnsPodLabels: { app: 'coredns', tier: 'node' },
    });
    assert.deepEqual(np.spec?.egress?.[0]?.to, [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'dns' } },
        podSelector: { matchLabels: { app: 'coredns', tier: 'node' } },
      },
    ]);
  });

  it('does not depend on anything in the FnolModel (the author cannot widen it)', () => {
    const plain = desiredNetworkPolicy(fnolModel(), testConfig);
    const other = desiredNetworkPolicy(
      fnolModel({
        model: { version: '2', uri: 'https://evil.example.com:8443/x.onnx', sha256: 'f'.repeat(64) },
      }),
      testConfig,
    );
    assert.deepEqual(other.spec?.egress, plain.spec?.egress);
  });
});

describe('config: egress settings', () => {
  it('defaults: the model store on 443 anywhere, DNS in kube-system', () => {
    const cfg = loadConfig({});
    assert.deepEqual(cfg.modelStoreCidrs, ['0.0.0.0/0']);
    assert.deepEqual(cfg.modelStorePorts, [443]);
    assert.equal(cfg.dnsNamespace, 'kube-system');
    assert.deepEqual(cfg.dnsPodLabels, { 'k8s-app': 'kube-dns' });
  });

  it('reads CIDRs (IPv4 and IPv6), ports and DNS labels', () => {
    const cfg = loadConfig({
      MODEL_STORE_CIDRS: ' 10.20.0.4/32, fd00:10::/64 ',
      MODEL_STORE_PORTS: '443,10000',
      DNS_NAMESPACE: 'dns',
      DNS_POD_LABELS: 'app=coredns, tier=node',
    });
    assert.deepEqual(cfg.modelStoreCidrs, ['10.20.0.4/32', 'fd00:10::/64']);
    assert.deepEqual(cfg.modelStorePorts, [443, 10000]);
    assert.equal(cfg.dnsNamespace, 'dns');
    assert.deepEqual(cfg.dnsPodLabels, { app: 'coredns', tier: 'node' });
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ MODEL_STORE_CIDRS: '10.20.0.4' }, /MODEL_STORE_CIDRS holds "10\.20\.0\.4", which is not a CIDR/],
    [{ MODEL_STORE_CIDRS: '10.20.0.4/24' }, /host bits set.*10\.20\.0\.0\/24/],
    [{ MODEL_STORE_CIDRS: '300.1.1.1/32' }, /not a CIDR/],
    [{ MODEL_STORE_CIDRS: '10.0.0.0/33' }, /not a CIDR/],
    [{ MODEL_STORE_CIDRS: 'fd00::1/64' }, /host bits set/],
    [{ MODEL_STORE_CIDRS: ',' }, /MODEL_STORE_CIDRS is empty/],
    [{ MODEL_STORE_PORTS: '443,0' }, /MODEL_STORE_PORTS holds "0".*1 to 65535/],
    [{ MODEL_STORE_PORTS: 'https' }, /MODEL_STORE_PORTS holds "https"/],
    [{ DNS_NAMESPACE: 'Kube_System' }, /DNS_NAMESPACE.*not a namespace name/],
    [{ DNS_POD_LABELS: 'k8s-app' }, /DNS_POD_LABELS holds "k8s-app".*key=value/],
    [{ DNS_POD_LABELS: 'k8s-app=kube dns' }, /DNS_POD_LABELS holds "k8s-app=kube dns"/],
  ];
  for (const [env, message] of bad) {
    it(`refuses ${JSON.stringify(env)}`, () => {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }
});
