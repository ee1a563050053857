import { strict as assert } from 'node:assert';
import type { V1Container } from '@kubernetes/client-node';
import {
  API_KEY_DIR,
  desiredDeployment,
  MODEL_SAS_TOKEN_FILE,
  servedModelOf,
} from '../../src/reconcilers/deployment';
import { API_VERSION, KIND, Labels, sameModel } from '@fnol/api';
import { fnolModel, SHA_B, testConfig } from '../fixtures';

function scorer(c: V1Container[] | undefined): V1Container {
  const s = c?.find((x) => x.name === 'scorer');
  assert.ok(s, 'no scorer container');
  return s;
}

function env(c: V1Container): Record<string, string | undefined> {
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
}

describe('reconcilers/deployment', () => {
  it('passes the model to the scorer through the contract environment', () => {
    const d = desiredDeployment(fnolModel(), testConfig);
    const e = env(scorer(d.spec?.template.spec?.containers));
    assert.equal(e.MODEL_URI, 'https://models.example.test/fnol/fnol-1.0.0.onnx');
    assert.equal(e.MODEL_SHA256, 'a'.repeat(64));
    assert.equal(e.MODEL_VERSION, '1.0.0');
    assert.equal(e.MODEL_NAME, 'fnol');
    assert.equal(e.PORT, '8080');
    assert.equal(e.MODEL_SAS_TOKEN_FILE, undefined);
    // The scorer enforces the same download policy as the operator.
    assert.equal(e.MODEL_ALLOWED_HOSTS, '*.blob.core.windows.net,models.example.test');
    assert.equal(e.MODEL_LOCAL_MODE, 'false');
    assert.equal(e.API_KEYS_FILE, undefined);
  });

  it('tells the scorer the model name of spec.modelName (the CRD defaults it to fnol)', () => {
    const fm = fnolModel();
    assert.equal(
      env(scorer(desiredDeployment(fm, testConfig).spec?.template.spec?.containers)).MODEL_NAME,
      'fnol',
    );
    fm.spec.modelName = 'second';
    const e = env(scorer(desiredDeployment(fm, testConfig).spec?.template.spec?.containers));
    assert.equal(e.MODEL_NAME, 'second');
    assert.equal(
      (scorer(desiredDeployment(fm, testConfig).spec?.template.spec?.containers).env ?? []).filter(
        (v) => v.name === 'MODEL_NAME',
      ).length,
      1,
    );
  });

  it("places the pods with the spec's nodeSelector and tolerations, and sets none by default", () => {
    const fm = fnolModel();
    assert.equal(desiredDeployment(fm, testConfig).spec?.template.spec?.nodeSelector, undefined);
    assert.equal(desiredDeployment(fm, testConfig).spec?.template.spec?.tolerations, undefined);
    fm.spec.nodeSelector = { agentpool: 'scoring' };
    fm.spec.tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'scoring', effect: 'NoSchedule' }];
    const pod = desiredDeployment(fm, testConfig).spec?.template.spec;
    assert.deepEqual(pod?.nodeSelector, { agentpool: 'scoring' });
    assert.deepEqual(pod?.tolerations, [
      { key: 'dedicated', operator: 'Equal', value: 'scoring', effect: 'NoSchedule' },
    ]);
  });

  it('is owned by the FnolModel as its controller', () => {
    const d = desiredDeployment(fnolModel(), testConfig);
    assert.deepEqual(d.metadata?.ownerReferences?.[0], {
      apiVersion: API_VERSION,
      kind: KIND,
      name: 'fnol',
      uid: '0b8a6f7e-1111-2222-3333-444455556666',
      controller: true,
      blockOwnerDeletion: true,
    });
    assert.equal(d.metadata?.namespace, 'claims');
  });

  it('never removes a serving pod before its replacement is ready', () => {
    const d = desiredDeployment(fnolModel(), testConfig);
    assert.equal(d.spec?.strategy?.type, 'RollingUpdate');
    assert.equal(d.spec?.strategy?.rollingUpdate?.maxUnavailable, 0);
    assert.equal(d.spec?.progressDeadlineSeconds, 600);
  });

  it('probes /healthz and /readyz on port 8080', () => {
    const c = scorer(desiredDeployment(fnolModel(), testConfig).spec?.template.spec?.containers);
    assert.equal(c.ports?.[0]?.containerPort, 8080);
    assert.equal(c.startupProbe?.httpGet?.path, '/healthz');
    assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(c.readinessProbe?.httpGet?.port, 'http');
  });

  it('keeps a terminating pod serving until its endpoint is withdrawn, within the grace period', () => {
    const pod = desiredDeployment(fnolModel(), testConfig).spec?.template.spec;
    const c = scorer(pod?.containers);
    const preStop = c.lifecycle?.preStop as { sleep?: { seconds: number }; exec?: unknown } | undefined;
    assert.equal(preStop?.exec, undefined, 'the scorer image has no shell: the kubelet must run the sleep');
    assert.ok((preStop?.sleep?.seconds ?? 0) >= 3, 'preStop sleep of at least 3 s');
    const grace = Number(c.env?.find((e) => e.name === 'SHUTDOWN_GRACE_SECONDS')?.value);
    assert.ok(
      (pod?.terminationGracePeriodSeconds ?? 0) > (preStop?.sleep?.seconds ?? 0) + grace,
      "the pod grace period covers the sleep and the scorer's own drain",
    );
  });

  it('runs under the restricted pod security standard', () => {
    const pod = desiredDeployment(fnolModel(), testConfig).spec?.template.spec;
    const c = scorer(pod?.containers);
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.equal(pod?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
    assert.equal(typeof c.securityContext?.runAsUser, 'number');
    assert.ok((c.securityContext?.runAsUser ?? 0) > 0);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
    assert.equal(pod?.automountServiceAccountToken, false);
  });

  it('spreads pods across nodes and is scraped by Prometheus', () => {
    const t = desiredDeployment(fnolModel(), testConfig).spec?.template;
    assert.equal(t?.spec?.topologySpreadConstraints?.[0]?.topologyKey, 'kubernetes.io/hostname');
    assert.equal(t?.metadata?.annotations?.['prometheus.io/scrape'], 'true');
    assert.equal(t?.metadata?.annotations?.['prometheus.io/port'], '8080');
    assert.equal(t?.metadata?.annotations?.['prometheus.io/path'], '/metrics');
  });

  it('uses the default image unless spec.image is set, and the replicas asked for', () => {
    const d = desiredDeployment(fnolModel(), testConfig);
    assert.equal(scorer(d.spec?.template.spec?.containers).image, 'fnol-scorer:test');
    assert.equal(d.spec?.replicas, 2);
    const d2 = desiredDeployment(
      fnolModel({ image: 'registry.example/fnol-scorer:2', replicas: 5 }),
      testConfig,
    );
    assert.equal(scorer(d2.spec?.template.spec?.containers).image, 'registry.example/fnol-scorer:2');
    assert.equal(d2.spec?.replicas, 5);
  });

  it('leaves replicas to the HPA when autoscaling', () => {
    const d = desiredDeployment(
      fnolModel({ autoscaling: { minReplicas: 2, maxReplicas: 6, targetCPUUtilizationPercentage: 70 } }),
      testConfig,
    );
    assert.equal(d.spec?.replicas, undefined);
    assert.ok(!('replicas' in (d.spec ?? {})));
  });

  it('mounts the model credentials and API keys per the scorer contract', () => {
    const fm = fnolModel({ auth: { apiKeySecretRef: { name: 'fnol-api-keys', key: 'keys' } } });
    fm.spec.model.credentialsSecretRef = { name: 'fnol-model-sas', key: 'sasToken' };
    const pod = desiredDeployment(fm, testConfig).spec?.template.spec;
    const c = scorer(pod?.containers);
    const e = env(c);
    assert.equal(e.MODEL_SAS_TOKEN_FILE, MODEL_SAS_TOKEN_FILE);
    assert.equal(MODEL_SAS_TOKEN_FILE, '/var/run/secrets/fnol/model/sasToken');
    assert.equal(e.API_KEYS_FILE, `${API_KEY_DIR}/keys`);
    assert.equal(e.API_KEYS_FILE, '/var/run/secrets/fnol/api-key/keys');
    const vol = (n: string) => pod?.volumes?.find((v) => v.name === n);
    assert.equal(vol('model-credentials')?.secret?.secretName, 'fnol-model-sas');
    assert.deepEqual(vol('model-credentials')?.secret?.items, [{ key: 'sasToken', path: 'sasToken' }]);
    assert.equal(vol('api-keys')?.secret?.secretName, 'fnol-api-keys');
    for (const m of c.volumeMounts?.filter((m) => m.name !== 'tmp') ?? []) assert.equal(m.readOnly, true);
    // The secret values themselves never appear in the Deployment.
    assert.ok(!JSON.stringify(pod).includes('sig='));
  });

  it('changes the pod template when the model changes, so the pods roll', () => {
    const a = desiredDeployment(fnolModel(), testConfig).spec?.template;
    const fm = fnolModel();
    fm.spec.model = {
      version: '1.1.0',
      uri: 'https://models.example.test/fnol/fnol-1.1.0.onnx',
      sha256: SHA_B,
    };
    const b = desiredDeployment(fm, testConfig).spec?.template;
    assert.notDeepEqual(a, b);
    assert.equal(b?.metadata?.labels?.[Labels.modelVersion], '1.1.0');
  });

  it('serves an explicitly given model (the previous one while a new one is blocked)', () => {
    const fm = fnolModel();
    fm.spec.model = { version: '1.1.0', uri: 'https://models.example.test/x.onnx', sha256: SHA_B };
    const old = {
      version: '1.0.0',
      uri: 'https://models.example.test/fnol/fnol-1.0.0.onnx',
      sha256: 'a'.repeat(64),
    };
    const d = desiredDeployment(fm, testConfig, old);
    const served = servedModelOf(d);
    assert.ok(sameModel(served, old));
    assert.ok(!sameModel(served, fm.spec.model));
  });
});
