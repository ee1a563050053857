// The scorer's side of the workload identity download: MODEL_IDENTITY and the
// AZURE_* settings checked at start-up, and the model and its card fetched with
// one bearer token over https (a real HTTPS server on loopback that serves only
// to that token), with a 403 explained in terms of the identity's role.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseAllowedHosts } from '@fnol/model-fetch';
import { ConfigError, parseConfig, type ModelSourceConfig } from '../src/config';
import { fetchModel, ModelSourceError } from '../src/model-source';
import { TestServer } from '../../lib/model-fetch/test/servers';

const IDENTITY_ENV = {
  MODEL_URI: 'https://acct.blob.core.windows.net/models/fnol/1.0.0/fnol-1.0.0.onnx',
  MODEL_SHA256: 'a'.repeat(64),
  MODEL_IDENTITY: 'WorkloadIdentity',
  AZURE_CLIENT_ID: '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d',
  AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
  AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
};

function problems(env: Record<string, string>): string {
  try {
    parseConfig(env, () => 'sv=2024&sig=abc');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems.join('\n');
  }
  return '';
}

describe('scorer MODEL_IDENTITY settings', () => {
  it('reads the webhook settings and takes MODEL_IDENTITY_CLIENT_ID in place of AZURE_CLIENT_ID', () => {
    const config = parseConfig(
      { ...IDENTITY_ENV, MODEL_IDENTITY_CLIENT_ID: '11111111-2222-4333-8444-555555555555' },
      () => '',
    );
    assert.equal(config.model.identity?.clientId, '11111111-2222-4333-8444-555555555555');
    assert.equal(config.model.identity?.tenantId, IDENTITY_ENV.AZURE_TENANT_ID);
    assert.equal(config.model.sasToken, undefined);
  });

  it('refuses a missing wiring, a SAS token beside it, plain http and an authority off the list', () => {
    const { AZURE_FEDERATED_TOKEN_FILE: _file, ...unwired } = IDENTITY_ENV;
    assert.match(
      problems(unwired),
      /MODEL_IDENTITY=WorkloadIdentity: AZURE_FEDERATED_TOKEN_FILE is not set; the pod lacks the workload identity wiring/,
    );
    assert.match(
      problems({ ...IDENTITY_ENV, MODEL_SAS_TOKEN_FILE: '/sas' }),
      /and a SAS token are both set; use one of them/,
    );
    assert.match(
      problems({
        ...IDENTITY_ENV,
        MODEL_LOCAL_MODE: 'true',
        MODEL_ALLOWED_HOSTS: 'store.local',
        MODEL_URI: 'http://store.local/m.onnx',
      }),
      /needs an https:\/\/ MODEL_URI/,
    );
    assert.match(
      problems({ ...IDENTITY_ENV, AZURE_AUTHORITY_HOST: 'https://login.attacker.example/' }),
      /AZURE_AUTHORITY_HOST login\.attacker\.example is not on the token authority allow-list/,
    );
    assert.match(
      problems({ ...IDENTITY_ENV, MODEL_IDENTITY: 'ManagedIdentity' }),
      /is not WorkloadIdentity or None/,
    );
  });
});

describe('scorer model download with a bearer token (HTTPS on loopback)', function () {
  this.timeout(20_000);
  const server = new TestServer(true);
  const model = Buffer.from('a model served to bearers only, '.repeat(64));
  const sha256 = createHash('sha256').update(model).digest('hex');
  const seen: string[] = [];
  const logger = { info: () => undefined, warn: () => undefined };

  before(async () => {
    await server.start();
    const guarded =
      (body: Buffer) =>
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        seen.push(`${req.headers.authorization ?? ''} ${req.headers['x-ms-version'] ?? ''}`);
        if (req.headers.authorization !== 'Bearer storage-token' || !req.headers['x-ms-version']) {
          return res.writeHead(403).end('AuthorizationPermissionMismatch');
        }
        res.writeHead(200, { 'content-length': body.length }).end(body);
      };
    server.route('/models/m.onnx', guarded(model));
    server.route('/models/m.model-card.json', guarded(Buffer.from('{"version":"1.0.0"}')));
  });
  after(() => server.stop());

  function source(): ModelSourceConfig {
    return {
      uri: new URL(server.url('/models/m.onnx')),
      sha256,
      name: undefined,
      version: undefined,
      sasToken: undefined,
      maxBytes: 1 << 20,
      fetchAttempts: 1,
      fetchTimeoutMs: 10_000,
      retryBaseDelayMs: 10,
      policy: { allowedHosts: parseAllowedHosts('127.0.0.1'), localMode: false },
    };
  }

  it('fetches the model and its card with the same bearer token and x-ms-version', async () => {
    let asked = 0;
    const bearer = {
      token: () => {
        asked++;
        return Promise.resolve('storage-token');
      },
    };
    const got = await fetchModel(source(), { logger, bearer, ca: server.ca });
    assert.equal(got.sha256, sha256);
    assert.deepEqual(got.card, { version: '1.0.0' });
    assert.equal(asked, 2);
    assert.equal(seen.length, 2);
    assert.ok(
      seen.every((s) => /^Bearer storage-token \d{4}-\d{2}-\d{2}$/.test(s)),
      seen.join('; '),
    );
  });

  it("explains storage's 403 in terms of the identity's role", async () => {
    const bearer = { token: () => Promise.resolve('another-token') };
    const withIdentity = {
      ...source(),
      identity: parseConfig(IDENTITY_ENV, () => '').model.identity,
    };
    await assert.rejects(
      fetchModel(withIdentity, { logger, bearer, ca: server.ca }),
      (error: unknown) =>
        error instanceof ModelSourceError &&
        /HTTP 403; check that the managed identity has the Storage Blob Data Reader role/.test(
          error.message,
        ) &&
        !error.message.includes('another-token'),
    );
  });
});
