// The operator's part of Azure identity: the scorer pods' workload identity
// wiring (ServiceAccount, webhook label, MODEL_IDENTITY_*), OIDC settings passed
// as OIDC_*, NetworkPolicy egress opened only to the identity hosts a FnolModel
// needs, and the operator's own settings (IDENTITY_EGRESS, its own identity).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { parseAllowedHosts } from '@fnol/model-fetch';
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { TestServer } from '../../../lib/model-fetch/test/servers';
import { loadConfig } from '../../src/config';
import { ModelChecks, type CheckState, type ModelChecksOptions } from '../../src/digest';
import { desiredCanaryDeployment, desiredDeployment } from '../../src/reconcilers/deployment';
import { desiredNetworkPolicy, identityHosts } from '../../src/reconcilers/networkpolicy';
import { fnolModel, SHA_B, testConfig } from '../fixtures';

const cfg = {
  ...testConfig,
  tokenAuthorityHosts: parseAllowedHosts('login.microsoftonline.com'),
  identityEgress: {
    'login.microsoftonline.com': ['20.190.128.0/18', '40.126.0.0/18'],
    'issuer.example.test': ['203.0.113.0/24'],
  },
};
const identity = { type: 'WorkloadIdentity' as const, serviceAccountName: 'fnol-model-reader' };
const oidc = {
  issuer: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
  audiences: ['api://fnol-scorer', '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d'],
  requiredRoles: ['Scorer.Invoke'],
};

function envOf(d: ReturnType<typeof desiredDeployment> | undefined): Record<string, string | undefined> {
  const env = d?.spec?.template.spec?.containers[0]?.env ?? [];
  return Object.fromEntries(env.map((e) => [e.name, e.value]));
}

function egressCidrs(np: V1NetworkPolicy): string[] {
  return (np.spec?.egress ?? [])
    .flatMap((r) => (r.to ?? []).map((p) => p.ipBlock?.cidr ?? ''))
    .filter(Boolean);
}

describe('workload identity and OIDC in the scorer pods', () => {
  it('runs the stable and the canary pods as the named ServiceAccount with the webhook label, no SAS token', () => {
    const fm = fnolModel({
      model: {
        version: '1.0.0',
        uri: 'https://acct.blob.core.windows.net/m/1.onnx',
        sha256: 'a'.repeat(64),
        identity,
      },
      canary: {
        model: { version: '1.1.0', uri: 'https://acct.blob.core.windows.net/m/2.onnx', sha256: SHA_B },
        trafficPercent: 0,
        mirrorPercent: 0,
      },
    });
    for (const d of [desiredDeployment(fm, cfg), desiredCanaryDeployment(fm, cfg)]) {
      const pod = d!.spec!.template;
      assert.equal(pod.spec?.serviceAccountName, 'fnol-model-reader');
      assert.equal(pod.metadata?.labels?.['azure.workload.identity/use'], 'true');
      assert.equal(
        pod.spec?.automountServiceAccountToken,
        false,
        'no API server token; the webhook projects its own',
      );
      const env = envOf(d);
      assert.equal(env.MODEL_IDENTITY, 'WorkloadIdentity');
      assert.equal(env.MODEL_TOKEN_AUTHORITY_HOSTS, 'login.microsoftonline.com');
      assert.equal(env.MODEL_SAS_TOKEN_FILE, undefined);
      assert.equal(env.MODEL_IDENTITY_CLIENT_ID, undefined);
    }
    const withClient = fnolModel({
      model: {
        ...fm.spec.model,
        identity: { ...identity, clientId: '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d' },
      },
    });
    assert.equal(
      envOf(desiredDeployment(withClient, cfg)).MODEL_IDENTITY_CLIENT_ID,
      '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d',
    );
  });

  it('leaves pods without spec.model.identity as they were: default ServiceAccount, no label', () => {
    const d = desiredDeployment(fnolModel(), cfg);
    assert.equal(d.spec?.template.spec?.serviceAccountName, undefined);
    assert.equal(d.spec?.template.metadata?.labels?.['azure.workload.identity/use'], undefined);
    assert.equal(envOf(d).MODEL_IDENTITY, undefined);
    assert.equal(envOf(d).OIDC_ISSUER, undefined);
  });

  it('passes spec.auth.oidc as OIDC_* settings', () => {
    const env = envOf(desiredDeployment(fnolModel({ auth: { oidc } }), cfg));
    assert.equal(env.OIDC_ISSUER, oidc.issuer);
    assert.equal(env.OIDC_AUDIENCES, 'api://fnol-scorer,0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d');
    assert.equal(env.OIDC_REQUIRED_ROLES, 'Scorer.Invoke');
    assert.equal(env.OIDC_JWKS_URI, undefined);
  });
});

describe('identity egress in the scorer NetworkPolicy', () => {
  it('opens nothing for a FnolModel without identity or OIDC', () => {
    assert.deepEqual(egressCidrs(desiredNetworkPolicy(fnolModel(), cfg)), ['0.0.0.0/0']);
  });

  it("opens the token endpoint's CIDRs on 443 for spec.model.identity, and the key set host's for spec.auth.oidc", () => {
    const fm = fnolModel({ model: { ...fnolModel().spec.model, identity } });
    const np = desiredNetworkPolicy(fm, cfg);
    const rule = np.spec?.egress?.at(-1);
    assert.deepEqual(rule?.ports, [{ protocol: 'TCP', port: 443 }]);
    assert.deepEqual(
      rule?.to?.map((p) => p.ipBlock?.cidr),
      ['20.190.128.0/18', '40.126.0.0/18'],
    );
    const other = fnolModel({
      auth: {
        oidc: {
          issuer: 'https://issuer.example.test/t',
          audiences: ['a'],
          jwksUri: 'https://issuer.example.test/keys',
        },
      },
    });
    assert.deepEqual(identityHosts(other, cfg), ['issuer.example.test']);
    assert.deepEqual(desiredNetworkPolicy(other, cfg).spec?.egress?.at(-1)?.to, [
      { ipBlock: { cidr: '203.0.113.0/24' } },
    ]);
  });

  it('opens nothing for an issuer host the admin did not list: the FnolModel author cannot widen egress', () => {
    const fm = fnolModel({
      auth: {
        oidc: {
          issuer: 'https://attacker.example/',
          audiences: ['a'],
          jwksUri: 'https://attacker.example/keys',
        },
      },
    });
    assert.deepEqual(egressCidrs(desiredNetworkPolicy(fm, cfg)), ['0.0.0.0/0']);
  });
});

describe('operator identity settings', () => {
  const base = { FNOL_SCORER_IMAGE: 'fnol-scorer:test', POD_NAMESPACE: 'fnol-system' };

  it('reads IDENTITY_EGRESS and refuses a malformed entry, naming it', () => {
    const c = loadConfig({
      ...base,
      IDENTITY_EGRESS: 'login.microsoftonline.com=20.190.128.0/18|40.126.0.0/18',
    });
    assert.deepEqual(c.identityEgress, { 'login.microsoftonline.com': ['20.190.128.0/18', '40.126.0.0/18'] });
    assert.throws(
      () => loadConfig({ ...base, IDENTITY_EGRESS: '20.190.128.0/18' }),
      /IDENTITY_EGRESS holds "20\.190\.128\.0\/18": expected host=CIDR/,
    );
    assert.throws(() => loadConfig({ ...base, IDENTITY_EGRESS: 'h=20.190.128.1/18' }), /host bits set/);
  });

  it("takes the operator's own workload identity from the webhook's settings, and refuses an authority off the list", () => {
    const env = {
      ...base,
      AZURE_CLIENT_ID: '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d',
      AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
      AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
    };
    assert.equal(loadConfig(env).modelIdentity?.clientId, '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d');
    assert.equal(loadConfig(base).modelIdentity, undefined);
    assert.throws(
      () => loadConfig({ ...env, AZURE_AUTHORITY_HOST: 'https://attacker.example/' }),
      /operator's workload identity: AZURE_AUTHORITY_HOST attacker\.example is not on the token authority allow-list/,
    );
  });
});

describe("the digest check with the operator's own workload identity (HTTPS on loopback)", function () {
  this.timeout(20_000);
  const server = new TestServer(true);
  const body = Buffer.from('model bytes behind a bearer token');
  const sha = createHash('sha256').update(body).digest('hex');
  let uri = '';
  let checks: ModelChecks | undefined;
  const seen: string[] = [];

  before(async () => {
    await server.start();
    uri = server.route('/m.onnx', (req, res) => {
      seen.push(req.headers.authorization ?? '');
      if (req.headers.authorization !== 'Bearer operator-token') return res.writeHead(403).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
  });
  after(() => server.stop());
  afterEach(() => checks?.close());

  async function run(bearer: ModelChecksOptions['bearer']): Promise<CheckState> {
    const done: string[] = [];
    checks = new ModelChecks({
      policy: { allowedHosts: parseAllowedHosts('127.0.0.1'), localMode: false },
      deadlineMs: 5000,
      maxBytes: 1 << 20,
      ca: server.ca,
      maxConcurrent: 2,
      perNamespace: 2,
      onDone: (key) => done.push(key),
      log: pino({ level: 'silent' }),
      ...(bearer ? { bearer } : {}),
    });
    const request = {
      key: 'claims/fnol',
      namespace: 'claims',
      uri,
      sha256: sha,
      credentials: 'workload-identity',
      identity: true,
    };
    assert.equal(checks.check(request).state, 'pending');
    for (let i = 0; i < 500 && done.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    return checks.check(request);
  }

  it('downloads with the operator identity token and verifies the digest', async () => {
    const state = await run({ token: () => Promise.resolve('operator-token') });
    assert.deepEqual(state, { state: 'verified', cached: false });
    assert.equal(seen.at(-1), 'Bearer operator-token');
  });

  it("reports storage's refusal of the token by class, pointing at the identities' role", async () => {
    const state = await run({ token: () => Promise.resolve('unknown-token') });
    assert.ok(state.state === 'failed');
    assert.match(state.blocked.message, /^model fetch failed: HTTP 4xx; .*Storage Blob Data Reader role/);
    assert.doesNotMatch(state.blocked.message, /unknown-token|403/);
  });

  it('without an operator identity, refuses before any request and says how to give it one', async () => {
    const before = seen.length;
    const state = await run(undefined);
    assert.equal(state.state, 'failed');
    assert.ok(state.state === 'failed');
    assert.match(
      state.blocked.message,
      /operator has no workload identity of its own.*federated credential.*VERIFY_MODEL_DIGEST=false/,
    );
    assert.equal(seen.length, before, 'no request was made');
  });
});
