import { strict as assert } from 'node:assert';
import { modelUrl } from '../../src/reconcilers/common';
import { desiredHpa } from '../../src/reconcilers/hpa';
import { desiredChildren, resourcePath, OWNED_KINDS } from '../../src/reconcilers/index';
import { desiredIngress } from '../../src/reconcilers/ingress';
import { desiredNetworkPolicy } from '../../src/reconcilers/networkpolicy';
import { desiredPdb } from '../../src/reconcilers/pdb';
import { desiredService } from '../../src/reconcilers/service';
import { fnolModel, testConfig } from '../fixtures';

describe('reconcilers: service, ingress, hpa, pdb, networkpolicy', () => {
  it('Service: port 80 to the scorer http port, selecting this model only', () => {
    const s = desiredService(fnolModel());
    assert.equal(s.spec?.ports?.[0]?.port, 80);
    assert.equal(s.spec?.ports?.[0]?.targetPort, 'http');
    assert.deepEqual(s.spec?.selector, {
      'app.kubernetes.io/name': 'fnol-scorer',
      'app.kubernetes.io/instance': 'fnol',
    });
  });

  it('Ingress: only with spec.ingress; host, path, class and TLS from the spec', () => {
    assert.equal(desiredIngress(fnolModel()), undefined);
    const i = desiredIngress(
      fnolModel({
        ingress: { host: 'fnol.example.test', path: '/', className: 'nginx', tlsSecretName: 'fnol-tls' },
      }),
    );
    assert.equal(i?.spec?.ingressClassName, 'nginx');
    assert.equal(i?.spec?.rules?.[0]?.host, 'fnol.example.test');
    assert.equal(i?.spec?.rules?.[0]?.http?.paths[0]?.backend.service?.name, 'fnol');
    assert.deepEqual(i?.spec?.tls, [{ hosts: ['fnol.example.test'], secretName: 'fnol-tls' }]);
  });

  it('URL: https with TLS, http without, the Service without an Ingress', () => {
    assert.equal(
      modelUrl(fnolModel({ ingress: { host: 'a.example.test', path: '/', tlsSecretName: 't' } })),
      'https://a.example.test/',
    );
    assert.equal(
      modelUrl(fnolModel({ ingress: { host: 'a.example.test', path: '/fnol' } })),
      'http://a.example.test/fnol',
    );
    assert.equal(modelUrl(fnolModel()), 'http://fnol.claims.svc.cluster.local');
  });

  it('HPA: only with autoscaling, bounds and CPU target from the spec', () => {
    assert.equal(desiredHpa(fnolModel()), undefined);
    const h = desiredHpa(
      fnolModel({ autoscaling: { minReplicas: 3, maxReplicas: 9, targetCPUUtilizationPercentage: 60 } }),
    );
    assert.equal(h?.spec?.minReplicas, 3);
    assert.equal(h?.spec?.maxReplicas, 9);
    assert.equal(h?.spec?.metrics?.[0]?.resource?.target.averageUtilization, 60);
    assert.equal(h?.spec?.scaleTargetRef.name, 'fnol');
  });

  it('PDB: only with more than one replica', () => {
    assert.equal(desiredPdb(fnolModel({ replicas: 1 })), undefined);
    assert.equal(desiredPdb(fnolModel({ replicas: 0 })), undefined);
    assert.equal(desiredPdb(fnolModel({ replicas: 2 }))?.spec?.maxUnavailable, 1);
    assert.ok(
      desiredPdb(
        fnolModel({
          replicas: 1,
          autoscaling: { minReplicas: 2, maxReplicas: 4, targetCPUUtilizationPercentage: 70 },
        }),
      ),
    );
  });

  it('NetworkPolicy: ingress only from the ingress controller and monitoring namespaces', () => {
    const np = desiredNetworkPolicy(fnolModel(), testConfig);
    // Egress is limited too (operator/test/unit/networkpolicy.test.ts).
    assert.deepEqual(np.spec?.policyTypes, ['Ingress', 'Egress']);
    const from = np.spec?.ingress?.[0]?.from?.map(
      (p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'],
    );
    assert.deepEqual(from, ['ingress-nginx', 'monitoring']);
    assert.equal(np.spec?.ingress?.[0]?.ports?.[0]?.port, 8080);
  });

  it('desiredChildren lists every kind by name; absent ones are marked for deletion; no Deployment while blocked', () => {
    const fm = fnolModel({ replicas: 1 });
    const inputs = {
      model: fm.spec.model,
      canaryModelReady: false,
      mirror: undefined,
      canaryWeight: 0,
      httpRoutes: true,
    };
    const kids = desiredChildren(fm, testConfig, inputs);
    const kinds = kids.map((k) => `${k.kind.kind}/${k.name}:${k.object ? 'apply' : 'delete'}`);
    assert.deepEqual(kinds, [
      'NetworkPolicy/fnol:apply',
      'NetworkPolicy/fnol-canary:delete',
      'Service/fnol:apply',
      'Service/fnol-canary:delete',
      'Deployment/fnol:apply',
      'Deployment/fnol-canary:delete',
      'PodDisruptionBudget/fnol:delete',
      'HorizontalPodAutoscaler/fnol:delete',
      'Ingress/fnol:delete',
      'HTTPRoute/fnol:delete',
    ]);
    assert.ok(
      !desiredChildren(fm, testConfig, { ...inputs, model: undefined }).some(
        (k) => k.name === 'fnol' && k.kind.kind === 'Deployment',
      ),
    );
    // Without the Gateway API the route is neither applied nor deleted.
    assert.ok(
      !desiredChildren(fm, testConfig, { ...inputs, httpRoutes: false }).some(
        (k) => k.kind.kind === 'HTTPRoute',
      ),
    );
  });

  it('resourcePath builds core and group paths', () => {
    assert.equal(resourcePath(OWNED_KINDS.Service, 'ns', 'a'), '/api/v1/namespaces/ns/services/a');
    assert.equal(resourcePath(OWNED_KINDS.Deployment, 'ns'), '/apis/apps/v1/namespaces/ns/deployments');
  });
});
