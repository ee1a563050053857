/**
 * The API server itself refuses invalid FnolModels (OpenAPI schema and CEL rules
 * of crds/fnolmodel.yaml), each with a message naming what is wrong.
 */
import { strict as assert } from 'node:assert';
import { KubeClient, KubeError } from '../../src/kube/client';
import { createTestNamespace } from '../../../test/support/cluster';
import { clusterWithCrd, modelPath } from './harness';
import { API_VERSION, KIND } from '@fnol/api';

const SHA = 'a'.repeat(64);
const MODEL = { version: '1.0.0', uri: 'https://models.example.test/fnol/fnol-1.0.0.onnx', sha256: SHA };
const CANDIDATE = {
  version: '1.1.0',
  uri: 'https://models.example.test/fnol/fnol-1.1.0.onnx',
  sha256: 'b'.repeat(64),
};
const GATEWAY = { parentRef: { name: 'public' } };
const IDENTITY = { type: 'WorkloadIdentity', serviceAccountName: 'fnol-model-reader' };
const OIDC = {
  issuer: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
  audiences: ['api://fnol-scorer'],
  requiredRoles: ['Scorer.Invoke'],
};

interface Case {
  what: string;
  name?: string;
  spec: Record<string, unknown>;
  message: RegExp;
}

const cases: Case[] = [
  {
    what: 'a drift window under 100 records',
    spec: { model: MODEL, monitoring: { drift: { window: 50 } } },
    message: /spec\.monitoring\.drift\.window.*greater than or equal to 100/,
  },
  {
    what: 'a drift window over 1,000,000 records',
    spec: { model: MODEL, monitoring: { drift: { window: 2_000_000 } } },
    message: /spec\.monitoring\.drift\.window.*less than or equal to 1000000/,
  },
  {
    what: 'drift minRecords above its window',
    spec: { model: MODEL, monitoring: { drift: { window: 500, minRecords: 600 } } },
    message: /spec\.monitoring\.drift\.minRecords is more than the window.*lower minRecords or raise window/,
  },
  {
    what: 'drift minRecords above the default window of 10000',
    spec: { model: MODEL, monitoring: { drift: { minRecords: 20_000 } } },
    message:
      /spec\.monitoring\.drift\.minRecords is more than the window \(spec\.monitoring\.drift\.window, 10000 when unset\)/,
  },
  {
    what: 'drift turned off with settings that would be ignored',
    spec: { model: MODEL, monitoring: { drift: { enabled: false, window: 5000 } } },
    message: /spec\.monitoring\.drift\.enabled is false but window, minRecords or updateSeconds is set/,
  },
  {
    what: 'a drift update period over an hour',
    spec: { model: MODEL, monitoring: { drift: { updateSeconds: 4000 } } },
    message: /spec\.monitoring\.drift\.updateSeconds.*less than or equal to 3600/,
  },
  {
    what: 'a drift window that is not an integer',
    spec: { model: MODEL, monitoring: { drift: { window: '10k' } } },
    message: /spec\.monitoring\.drift\.window.*must be of type integer/,
  },
  {
    what: 'a trace endpoint in the FnolModel (the cluster admin sets it on the operator)',
    spec: { model: MODEL, monitoring: { tracing: { endpoint: 'http://collector.evil.example:4318' } } },
    message: /unknown field "spec\.monitoring\.tracing"/,
  },
  { what: 'no spec.model', spec: { replicas: 2 }, message: /spec\.model: Required value/ },
  {
    what: 'no sha256',
    spec: { model: { version: '1.0.0', uri: MODEL.uri } },
    message: /spec\.model\.sha256: Required value/,
  },
  {
    what: 'upper-case sha256',
    spec: { model: { ...MODEL, sha256: 'A'.repeat(64) } },
    message: /spec\.model\.sha256.*should match '\^\[a-f0-9\]\{64\}\$'/,
  },
  {
    what: 'short sha256',
    spec: { model: { ...MODEL, sha256: 'abc' } },
    message: /spec\.model\.sha256.*at least 64 chars/,
  },
  {
    what: 'ftp uri',
    spec: { model: { ...MODEL, uri: 'ftp://models.example.test/m.onnx' } },
    message: /spec\.model\.uri must start with https:\/\/, http:\/\/ or file:\/\/\//,
  },
  {
    what: 'credentials in the uri',
    spec: { model: { ...MODEL, uri: 'https://user:pw@models.example.test/m.onnx' } },
    message: /must not contain user information/,
  },
  {
    what: 'a SAS token in the uri',
    spec: { model: { ...MODEL, uri: 'https://acct.blob.core.windows.net/m/m.onnx?sv=2024&sig=abc' } },
    message: /must not carry a SAS token/,
  },
  {
    what: 'a version that is not a label value',
    spec: { model: { ...MODEL, version: '1.0 beta' } },
    message: /spec\.model\.version.*should match/,
  },
  {
    what: 'negative replicas',
    spec: { model: MODEL, replicas: -1 },
    message: /spec\.replicas.*greater than or equal to 0/,
  },
  {
    what: 'too many replicas',
    spec: { model: MODEL, replicas: 1000 },
    message: /spec\.replicas.*less than or equal to 100/,
  },
  {
    what: 'minReplicas above maxReplicas',
    spec: { model: MODEL, autoscaling: { minReplicas: 5, maxReplicas: 2 } },
    message: /minReplicas must be less than or equal to spec\.autoscaling\.maxReplicas/,
  },
  {
    what: 'CPU target above 100 %',
    spec: { model: MODEL, autoscaling: { maxReplicas: 4, targetCPUUtilizationPercentage: 150 } },
    message: /targetCPUUtilizationPercentage.*less than or equal to 100/,
  },
  {
    what: 'an invalid ingress host',
    spec: { model: MODEL, ingress: { host: 'Not_A_Host' } },
    message: /spec\.ingress\.host.*should match/,
  },
  {
    what: 'an ingress path without /',
    spec: { model: MODEL, ingress: { host: 'fnol.example.test', path: 'score' } },
    message: /spec\.ingress\.path.*should match/,
  },
  {
    what: 'credentials over plain http',
    spec: {
      model: { ...MODEL, uri: 'http://models.example.test/m.onnx', credentialsSecretRef: { name: 'sas' } },
    },
    message: /credentialsSecretRef needs an https:\/\/ uri/,
  },
  {
    what: 'a name that cannot name a Service',
    name: '1fnol',
    spec: { model: MODEL },
    message: /metadata\.name must be a DNS-1035 label/,
  },
  {
    what: 'a CPU limit that is not a quantity',
    spec: { model: MODEL, resources: { limits: { cpu: 'lots' } } },
    message: /spec\.resources\.limits\.cpu.*should match/,
  },
  {
    what: 'an API key reference without key',
    spec: { model: MODEL, auth: { apiKeySecretRef: { name: 'keys' } } },
    message: /spec\.auth\.apiKeySecretRef\.key: Required value/,
  },
  {
    what: 'an image reference with spaces',
    spec: { model: MODEL, image: 'bad image' },
    message: /spec\.image.*should match/,
  },
  {
    what: 'a model name with upper-case letters',
    spec: { model: MODEL, modelName: 'Second' },
    message: /spec\.modelName.*should match/,
  },
  {
    what: 'a model name that is a path',
    spec: { model: MODEL, modelName: '../fnol' },
    message: /spec\.modelName.*should match/,
  },
  { what: 'a misspelt field', spec: { model: MODEL, replica: 3 }, message: /unknown field "spec\.replica"/ },
  {
    what: 'a canary of the serving version',
    spec: { model: MODEL, canary: { model: { ...MODEL, sha256: 'b'.repeat(64) } } },
    message: /spec\.canary\.model\.version must differ from spec\.model\.version/,
  },
  {
    what: 'canary traffic without spec.gateway',
    spec: { model: MODEL, canary: { model: CANDIDATE, trafficPercent: 10 } },
    message:
      /spec\.canary\.trafficPercent > 0 needs spec\.gateway \(an HTTPRoute splits live traffic by weight; an Ingress cannot\); add spec\.gateway\.parentRef, or set trafficPercent to 0 and compare with mirrorPercent only/,
  },
  {
    what: 'a canary traffic share over 100',
    spec: { model: MODEL, gateway: GATEWAY, canary: { model: CANDIDATE, trafficPercent: 101 } },
    message: /spec\.canary\.trafficPercent.*less than or equal to 100/,
  },
  {
    what: 'a negative mirror share',
    spec: { model: MODEL, canary: { model: CANDIDATE, mirrorPercent: -1 } },
    message: /spec\.canary\.mirrorPercent.*greater than or equal to 0/,
  },
  {
    what: 'a canary without a model',
    spec: { model: MODEL, canary: { mirrorPercent: 100 } },
    message: /spec\.canary\.model: Required value/,
  },
  {
    what: 'a canary model with a SAS token in its uri',
    spec: {
      model: MODEL,
      canary: { model: { ...CANDIDATE, uri: 'https://acct.blob.core.windows.net/m/m.onnx?sv=2024&sig=abc' } },
    },
    message: /spec\.canary\.model\.uri must not carry a SAS token/,
  },
  {
    what: 'a name over 56 characters with a canary (its objects are named <name>-canary)',
    name: `f${'x'.repeat(56)}`,
    spec: { model: MODEL, canary: { model: CANDIDATE } },
    message: /metadata\.name must be at most 56 characters when spec\.canary is set/,
  },
  {
    what: 'a gateway without a parentRef',
    spec: { model: MODEL, gateway: { path: '/' } },
    message: /spec\.gateway\.parentRef: Required value/,
  },
  {
    what: 'a workload identity together with a SAS token Secret',
    spec: { model: { ...MODEL, identity: IDENTITY, credentialsSecretRef: { name: 'sas' } } },
    message: /spec\.model\.identity and spec\.model\.credentialsSecretRef exclude each other/,
  },
  {
    what: 'a workload identity over plain http',
    spec: { model: { ...MODEL, uri: 'http://models.example.test/m.onnx', identity: IDENTITY } },
    message: /spec\.model\.identity needs an https:\/\/ uri/,
  },
  {
    what: 'a workload identity without a ServiceAccount',
    spec: { model: { ...MODEL, identity: { type: 'WorkloadIdentity' } } },
    message: /spec\.model\.identity\.serviceAccountName: Required value/,
  },
  {
    what: 'a client ID that is not a GUID',
    spec: { model: { ...MODEL, identity: { ...IDENTITY, clientId: 'my-app' } } },
    message: /spec\.model\.identity\.clientId.*should match/,
  },
  {
    what: 'an OIDC issuer without a key set that is not Entra ID',
    spec: { model: MODEL, auth: { oidc: { issuer: 'https://issuer.example.test/', audiences: ['a'] } } },
    message: /spec\.auth\.oidc\.jwksUri is required unless the issuer is an Entra ID v2 issuer/,
  },
  {
    what: 'an OIDC issuer that is not http(s)',
    spec: {
      model: MODEL,
      auth: {
        oidc: { issuer: 'ftp://issuer.example.test/x', audiences: ['a'], jwksUri: 'https://i.example/k' },
      },
    },
    message: /spec\.auth\.oidc\.issuer/,
  },
  {
    what: 'OIDC without audiences',
    spec: { model: MODEL, auth: { oidc: { issuer: OIDC.issuer, audiences: [] } } },
    message: /spec\.auth\.oidc\.audiences.*at least 1 items/,
  },
];

describe('operator integration: the API server rejects invalid FnolModels', function () {
  let client: KubeClient;
  let ns: string;

  before(async function () {
    const cluster = await clusterWithCrd(this);
    client = new KubeClient(cluster.kubeConfig);
    ns = await createTestNamespace('op-valid');
  });

  it('accepts the valid baseline (so each rejection below is due to its one defect)', async () => {
    await client.request('POST', modelPath(ns), {
      body: {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'fnol' },
        spec: { model: MODEL },
      },
      query: { dryRun: 'All', fieldValidation: 'Strict' },
    });
  });

  it('accepts a canary and a gateway, a 56-character name with a canary, a workload identity, OIDC and drift settings', async () => {
    for (const [name, spec] of [
      [
        'fnol',
        {
          model: MODEL,
          gateway: GATEWAY,
          canary: { model: CANDIDATE, trafficPercent: 10, mirrorPercent: 100 },
        },
      ],
      ['fnol', { model: MODEL, canary: { model: CANDIDATE, mirrorPercent: 100 } }],
      [`f${'x'.repeat(55)}`, { model: MODEL, canary: { model: CANDIDATE } }],
      [`f${'x'.repeat(60)}`, { model: MODEL }],
      ['fnol', { model: MODEL, monitoring: { drift: { window: 100, minRecords: 100, updateSeconds: 0 } } }],
      ['fnol', { model: MODEL, monitoring: { drift: { enabled: false } } }],
      [
        'fnol',
        {
          model: { ...MODEL, identity: { ...IDENTITY, clientId: '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d' } },
          auth: { oidc: OIDC },
        },
      ],
      [
        'fnol',
        {
          model: MODEL,
          auth: {
            oidc: {
              issuer: 'https://issuer.example.test/t',
              audiences: ['a', 'b'],
              jwksUri: 'https://issuer.example.test/keys',
            },
          },
        },
      ],
    ] as const) {
      const got = await client.request<{
        spec: { canary?: { trafficPercent: number; mirrorPercent: number } };
      }>('POST', modelPath(ns), {
        body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec },
        query: { dryRun: 'All', fieldValidation: 'Strict' },
      });
      if (got.spec.canary) assert.equal(typeof got.spec.canary.trafficPercent, 'number');
    }
  });

  it('defaults spec.modelName to fnol and keeps a given one', async () => {
    const create = (spec: Record<string, unknown>) =>
      client.request<{ spec: { modelName?: string } }>('POST', modelPath(ns), {
        body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'fnol' }, spec },
        query: { dryRun: 'All', fieldValidation: 'Strict' },
      });
    assert.equal((await create({ model: MODEL })).spec.modelName, 'fnol');
    assert.equal((await create({ model: MODEL, modelName: 'second' })).spec.modelName, 'second');
  });

  for (const c of cases) {
    it(`rejects ${c.what}`, async () => {
      const body = {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: c.name ?? 'fnol' },
        spec: c.spec,
      };
      await assert.rejects(
        client.request('POST', modelPath(ns), { body, query: { dryRun: 'All', fieldValidation: 'Strict' } }),
        (err: unknown) => {
          assert.ok(err instanceof KubeError, String(err));
          assert.ok([400, 422].includes(err.statusCode), `HTTP ${err.statusCode}: ${err.message}`);
          assert.match(err.message, c.message);
          return true;
        },
      );
    });
  }
});
