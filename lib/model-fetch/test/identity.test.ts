// The workload identity download, end to end on loopback: a token endpoint the
// test starts (real HTTPS, checks the client assertion exchange as Entra ID
// does), and Azurite with OAuth (HTTPS, `--oauth basic`) serving the model only
// to a bearer token. Wrong or missing tokens fail with a clear error, and no
// token ever appears in a message.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  fetchModelFile,
  ModelFetchError,
  parseAllowedHosts,
  parseAuthorityHosts,
  publicSummary,
  workloadIdentityFromEnv,
  WorkloadIdentityToken,
  type FetchPolicy,
  type WorkloadIdentityConfig,
} from '../src/index';
import { selfSignedCert } from '../../../test/support/tls';
import { freePort } from '../../../test/support/net';

const ROOT = path.resolve(__dirname, '../../..');
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d';
const FEDERATED = 'federated-service-account-token-SECRET1';
const ACCOUNT = 'devstoreaccount1';
const model = Buffer.from('onnx model bytes served to a bearer token only, '.repeat(200));
const sha256 = createHash('sha256').update(model).digest('hex');

/** A storage access token as Entra ID issues it (Azurite's basic OAuth checks its claims, not its signature). */
function accessToken(claims: Record<string, unknown> = {}): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'ES256', typ: 'JWT', kid: 'test' });
  const body = b64({
    iss: `https://sts.windows.net/${TENANT}/`,
    aud: 'https://storage.azure.com',
    iat: now - 60,
    nbf: now - 60,
    exp: now + 3600,
    oid: CLIENT,
    tid: TENANT,
    ...claims,
  });
  const signature = sign('sha256', Buffer.from(`${head}.${body}`), {
    key: privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return `${head}.${body}.${signature.toString('base64url')}`;
}

interface TokenRequest {
  path: string;
  form: URLSearchParams;
}

/** A token endpoint like Entra ID's: client credentials with a federated client assertion. */
class TokenEndpoint {
  readonly requests: TokenRequest[] = [];
  /** What the next answers are: a token for `claims`, or an error. */
  answer: { claims?: Record<string, unknown>; status?: number; body?: unknown } = {};
  private server: https.Server | undefined;
  ca = '';

  async start(dir: string): Promise<this> {
    const cert = selfSignedCert(dir, '127.0.0.1', 'IP:127.0.0.1');
    this.ca = cert.cert;
    this.server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        this.requests.push({ path: req.url ?? '', form });
        const json = (status: number, body: unknown) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        if (this.answer.status !== undefined) return json(this.answer.status, this.answer.body ?? {});
        if (
          req.method !== 'POST' ||
          req.url !== `/${TENANT}/oauth2/v2.0/token` ||
          form.get('grant_type') !== 'client_credentials' ||
          form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' ||
          form.get('client_assertion') !== FEDERATED ||
          form.get('client_id') !== CLIENT ||
          form.get('scope') !== 'https://storage.azure.com/.default'
        ) {
          return json(401, {
            error: 'invalid_client',
            error_description:
              'AADSTS70021: No matching federated identity record found for presented assertion.',
          });
        }
        json(200, { token_type: 'Bearer', expires_in: 3599, access_token: accessToken(this.answer.claims) });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server!.address() as AddressInfo).port}/`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

describe('model fetcher with Azure AD workload identity (token endpoint and Azurite with OAuth)', function () {
  this.timeout(90_000);
  let dir: string;
  let azurite: ChildProcess | undefined;
  const endpoint = new TokenEndpoint();
  let storeCa = '';
  let blobUrl = '';
  let policy: FetchPolicy;
  let tokenFile: string;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'model-fetch-identity-'));
    const storeDir = mkdtempSync(path.join(dir, 'store-'));
    const endpointDir = mkdtempSync(path.join(dir, 'token-'));
    await endpoint.start(endpointDir);
    const cert = selfSignedCert(storeDir, '127.0.0.1', 'IP:127.0.0.1');
    storeCa = cert.cert;
    tokenFile = path.join(dir, 'azure-identity-token');
    writeFileSync(tokenFile, `${FEDERATED}\n`);
    const port = await freePort();
    azurite = spawn(
      path.join(ROOT, 'node_modules/.bin/azurite-blob'),
      [
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--inMemoryPersistence',
        '--skipApiVersionCheck',
        '--silent',
        '--oauth',
        'basic',
        '--cert',
        cert.certFile,
        '--key',
        cert.keyFile,
      ],
      { stdio: 'ignore' },
    );
    const base = `https://127.0.0.1:${port}/${ACCOUNT}`;
    blobUrl = `${base}/models/fnol/1.0.0/fnol-1.0.0.onnx`;
    policy = { allowedHosts: parseAllowedHosts(`127.0.0.1:${port}`), localMode: false };
    // Publish with a storage token too: container, then the blob (Azure's REST API).
    const token = accessToken();
    for (let i = 0; ; i++) {
      const status = await put(`${base}/models?restype=container`, token, Buffer.alloc(0), {}).catch(() => 0);
      if (status === 201 || status === 409) break;
      if (i > 300) throw new Error(`Azurite did not start (last status ${status})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await put(blobUrl, token, model, { 'x-ms-blob-type': 'BlockBlob' }), 201);
  });
  after(async () => {
    azurite?.kill();
    await endpoint.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function put(url: string, token: string, body: Buffer, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = https.request(url, {
        method: 'PUT',
        ca: storeCa,
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          'x-ms-version': '2021-12-02',
          'content-length': body.length,
          ...headers,
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  function identity(overrides: Partial<WorkloadIdentityConfig> = {}): WorkloadIdentityToken {
    const { config, problems } = workloadIdentityFromEnv(
      {
        AZURE_CLIENT_ID: CLIENT,
        AZURE_TENANT_ID: TENANT,
        AZURE_FEDERATED_TOKEN_FILE: tokenFile,
        AZURE_AUTHORITY_HOST: endpoint.url,
      },
      parseAuthorityHosts('127.0.0.1'),
    );
    assert.deepEqual(problems, []);
    return new WorkloadIdentityToken({ ...config!, ...overrides }, { ca: endpoint.ca });
  }

  /** The ModelFetchError of a download that must fail; its message carries no credential. */
  async function failure(bearer: WorkloadIdentityToken | undefined): Promise<ModelFetchError> {
    try {
      await fetchModelFile(blobUrl, {
        policy,
        deadlineMs: 20_000,
        maxBytes: 1 << 20,
        ca: storeCa,
        attempts: 3,
        retryBaseDelayMs: 10,
        ...(bearer ? { bearer } : {}),
      });
    } catch (error) {
      assert.ok(error instanceof ModelFetchError, String(error));
      assert.doesNotMatch(error.message, /SECRET1|eyJ/, 'no federated or access token in the message');
      assert.doesNotMatch(publicSummary(error), /SECRET1|eyJ|AADSTS/);
      return error;
    }
    assert.fail('the download succeeded');
  }

  it('exchanges the federated token and downloads the model with a bearer token', async () => {
    endpoint.answer = {};
    const before = endpoint.requests.length;
    const bearer = identity();
    const got = await fetchModelFile(blobUrl, {
      policy,
      deadlineMs: 20_000,
      maxBytes: 1 << 20,
      ca: storeCa,
      keepBody: true,
      bearer,
    });
    assert.equal(got.sha256, sha256);
    assert.deepEqual(got.body, model);
    // The access token is kept: a second download asks the endpoint nothing.
    await fetchModelFile(blobUrl, { policy, deadlineMs: 20_000, maxBytes: 1 << 20, ca: storeCa, bearer });
    assert.equal(endpoint.requests.length - before, 1);
  });

  it('without a token, storage refuses the download (HTTP 4xx, not retried)', async () => {
    const error = await failure(undefined);
    assert.equal(error.kind, 'http-status');
    assert.ok(error.status === 401 || error.status === 403, String(error.status));
    assert.equal(error.attempts, 1);
  });

  it('a token for another audience is refused by storage', async () => {
    endpoint.answer = { claims: { aud: 'https://management.azure.com' } };
    const error = await failure(identity());
    endpoint.answer = {};
    assert.equal(error.kind, 'http-status');
    assert.match(String(error.status), /^40[13]$/);
  });

  it('a federated token the endpoint does not accept: a clear error naming the AADSTS code, nothing else', async () => {
    const wrongFile = path.join(dir, 'other-token');
    writeFileSync(wrongFile, 'some-other-service-account-token');
    const error = await failure(identity({ tokenFile: wrongFile }));
    assert.equal(error.kind, 'token');
    assert.match(
      error.message,
      /token request refused: HTTP 401 invalid_client \(AADSTS70021\); check the federated credential/,
    );
    assert.doesNotMatch(error.message, /No matching/);
    assert.equal(publicSummary(error), 'no access token from the workload identity');
  });

  it('a missing federated token file is named', async () => {
    const error = await failure(identity({ tokenFile: path.join(dir, 'absent') }));
    assert.equal(error.kind, 'token');
    assert.match(error.message, /AZURE_FEDERATED_TOKEN_FILE cannot be read \(ENOENT\)/);
  });

  it('an answer without an access token is refused', async () => {
    endpoint.answer = { status: 200, body: { token_type: 'Bearer', expires_in: 3600 } };
    const error = await failure(identity());
    endpoint.answer = {};
    assert.equal(error.kind, 'token');
    assert.match(error.message, /holds no access token/);
  });

  it('never sends a bearer token over plain http', async () => {
    const error = await fetchModelFile('http://127.0.0.1:9/models/m.onnx', {
      policy: { allowedHosts: parseAllowedHosts('127.0.0.1'), localMode: true },
      deadlineMs: 5000,
      maxBytes: 1024,
      bearer: identity(),
    }).catch((e: unknown) => e);
    assert.ok(error instanceof ModelFetchError);
    assert.equal(error.kind, 'scheme-not-allowed');
    assert.match(error.message, /access token is sent over https:\/\/ only/);
  });
});

describe('workload identity settings', () => {
  const env = {
    AZURE_CLIENT_ID: CLIENT,
    AZURE_TENANT_ID: TENANT,
    AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
    AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
  };
  const entra = parseAuthorityHosts(undefined);

  it('takes what the AKS webhook injects, and the FnolModel clientId in place of AZURE_CLIENT_ID', () => {
    const { config, problems } = workloadIdentityFromEnv(env, entra, '11111111-2222-4333-8444-555555555555');
    assert.deepEqual(problems, []);
    assert.equal(config?.clientId, '11111111-2222-4333-8444-555555555555');
    assert.equal(config?.authorityHost.host, 'login.microsoftonline.com');
  });

  it('refuses a token authority off the allow-list: the federated token goes to Entra ID only', () => {
    const { problems } = workloadIdentityFromEnv(
      { ...env, AZURE_AUTHORITY_HOST: 'https://attacker.example/' },
      entra,
    );
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /AZURE_AUTHORITY_HOST attacker\.example is not on the token authority allow-list/,
    );
  });

  it('refuses http, a tenant that would change the URL, and names missing settings', () => {
    assert.match(
      workloadIdentityFromEnv({ ...env, AZURE_AUTHORITY_HOST: 'http://login.microsoftonline.com/' }, entra)
        .problems[0]!,
      /must use https/,
    );
    assert.match(
      workloadIdentityFromEnv({ ...env, AZURE_TENANT_ID: '../../evil?x=' }, entra).problems[0]!,
      /AZURE_TENANT_ID is not a tenant ID/,
    );
    const missing = workloadIdentityFromEnv({}, entra).problems.join('\n');
    assert.match(missing, /AZURE_CLIENT_ID is not set; the pod lacks the workload identity wiring/);
    assert.match(missing, /AZURE_FEDERATED_TOKEN_FILE is not set/);
  });
});
