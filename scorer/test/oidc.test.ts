// Callers with OpenID Connect bearer tokens, against a local issuer the test
// starts (real HTTP on loopback, its JSON Web Key Set changed as keys rotate)
// and the scorer's real HTTP layer: valid, expired, not yet valid, wrong
// audience or issuer, unknown and rotated keys, missing app roles, alg none and
// HS256 confusion; API keys alongside; RFC 6750 challenges; no token in logs.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import pino from 'pino';
import { ConfigError, parseConfig } from '../src/config';
import { OidcVerifier, type OidcConfig } from '../src/oidc';
import { call, fixtureModel, startInProcess, type InProcessScorer } from './support';

const AUDIENCE = 'api://fnol-scorer';
const body = { data: [[2, 'red', 3]] };

interface SigningKey {
  kid: string;
  privateKey: KeyLike;
  jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** An OIDC issuer on loopback: publishes `keys` at /keys and counts the fetches. */
class Issuer {
  keys: SigningKey[] = [];
  fetches = 0;
  down = false;
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      if (req.url !== '/keys') return res.writeHead(404).end();
      this.fetches++;
      if (this.down) return res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  get issuer(): string {
    return `${this.url}/tenant/v2.0`;
  }

  /** A token signed with `key`; `claims` replace the defaults (a valid token for AUDIENCE). */
  token(key: SigningKey, claims: Record<string, unknown> = {}, expiresInSeconds = 600): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: this.issuer,
      aud: AUDIENCE,
      sub: 'caller-app',
      iat: now - 5,
      nbf: now - 5,
      exp: now + expiresInSeconds,
      roles: ['Scorer.Invoke'],
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .sign(key.privateKey);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

describe('scorer callers with OIDC bearer tokens (local issuer)', function () {
  this.timeout(30_000);
  const issuer = new Issuer();
  let first: SigningKey;
  let scorer: InProcessScorer | undefined;
  let logged = '';

  const config = (overrides: Partial<OidcConfig> = {}): OidcConfig => ({
    issuer: issuer.issuer,
    audiences: [AUDIENCE, 'api://other'],
    requiredRoles: [],
    jwksUri: new URL(`${issuer.url}/keys`),
    clockSkewSeconds: 60,
    jwksCacheSeconds: 600,
    jwksCooldownSeconds: 30,
    ...overrides,
  });

  async function start(oidc: OidcConfig, apiKeys?: string[]): Promise<InProcessScorer> {
    await scorer?.close();
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
    scorer = await startInProcess(fixtureModel('generic'), {
      oidc: new OidcVerifier(oidc),
      logger: pino({ level: 'trace' }, sink),
      ...(apiKeys ? { apiKeys } : {}),
    });
    return scorer;
  }

  const score = (token: string | undefined, headers: Record<string, string> = {}) =>
    call(scorer!.url, '/score', {
      body,
      headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    });

  /** A refused call: its status, the RFC 6750 challenge and the message. */
  async function refused(token: string | undefined, status: number, error: string, description: RegExp) {
    const reply = await score(token);
    assert.equal(reply.status, status, reply.text);
    const challenge = reply.headers.get('www-authenticate') ?? '';
    assert.match(challenge, new RegExp(`^Bearer realm="fnol-scorer", error="${error}"`));
    assert.match(challenge, description);
    assert.match((reply.body as { error: string }).error, description);
  }

  before(async () => {
    first = await signingKey('key-1');
    issuer.keys = [first];
    await issuer.start();
  });
  beforeEach(() => {
    issuer.keys = [first];
    issuer.down = false;
  });
  after(async () => {
    await scorer?.close();
    await issuer.stop();
    // Nothing about any token reaches the log (a JWT's header segment always starts with eyJ),
    // though every refusal was logged at trace level.
    assert.match(logged, /request rejected/);
    assert.doesNotMatch(logged, /eyJ/);
  });

  it('accepts a valid token for any configured audience; probes stay open', async () => {
    await start(config());
    assert.equal((await score(await issuer.token(first))).status, 200);
    assert.equal((await score(await issuer.token(first, { aud: 'api://other' }))).status, 200);
    assert.equal((await call(scorer!.url, '/healthz')).status, 200);
  });

  it('asks for a token without an error code when none was sent (RFC 6750 §3.1)', async () => {
    await start(config());
    const reply = await score(undefined);
    assert.equal(reply.status, 401);
    assert.equal(reply.headers.get('www-authenticate'), 'Bearer realm="fnol-scorer"');
    assert.match(
      (reply.body as { error: string }).error,
      /send an access token as Authorization: Bearer TOKEN/,
    );
  });

  it('refuses an expired token, and accepts one expired within the clock skew', async () => {
    await start(config());
    await refused(await issuer.token(first, {}, -120), 401, 'invalid_token', /the token has expired/);
    assert.equal((await score(await issuer.token(first, {}, -30))).status, 200);
  });

  it('refuses a token that is not valid yet', async () => {
    await start(config());
    const later = Math.floor(Date.now() / 1000) + 600;
    await refused(await issuer.token(first, { nbf: later }), 401, 'invalid_token', /not valid yet/);
  });

  it('refuses a token for another audience or from another issuer', async () => {
    await start(config());
    await refused(
      await issuer.token(first, { aud: 'api://someone-else' }),
      401,
      'invalid_token',
      /audience is not this model's/,
    );
    await refused(
      await issuer.token(first, { iss: 'https://login.microsoftonline.com/other/v2.0' }),
      401,
      'invalid_token',
      /issuer this model does not accept/,
    );
  });

  it('refuses an unknown key id, fetching the key set again at most once per cool-down', async () => {
    await start(config());
    assert.equal((await score(await issuer.token(first))).status, 200);
    const before = issuer.fetches;
    const stranger = await signingKey('not-published');
    for (let i = 0; i < 5; i++) {
      await refused(await issuer.token(stranger), 401, 'invalid_token', /key the issuer does not publish/);
    }
    assert.ok(issuer.fetches - before <= 1, `fetched the key set ${issuer.fetches - before} times`);
  });

  it('accepts a key added by rotation after fetching the key set again; refuses a removed key once the set is fetched again', async () => {
    await start(config({ jwksCooldownSeconds: 0, jwksCacheSeconds: 1 }));
    assert.equal((await score(await issuer.token(first))).status, 200);
    const second = await signingKey('key-2');
    issuer.keys = [first, second];
    const fetched = issuer.fetches;
    assert.equal((await score(await issuer.token(second))).status, 200);
    assert.equal(issuer.fetches, fetched + 1, 'the new key id made the scorer fetch the key set');
    // The issuer retires the first key; once the cached set is older than its max age, it is refused.
    issuer.keys = [second];
    await new Promise((r) => setTimeout(r, 1100));
    await refused(await issuer.token(first), 401, 'invalid_token', /key the issuer does not publish/);
    assert.equal((await score(await issuer.token(second))).status, 200);
  });

  it('refuses a token without every required app role (403 insufficient_scope)', async () => {
    await start(config({ requiredRoles: ['Scorer.Invoke', 'Claims.Read'] }));
    await refused(await issuer.token(first), 403, 'insufficient_scope', /lacks the app role Claims\.Read/);
    assert.equal(
      (await score(await issuer.token(first, { roles: ['Claims.Read', 'Scorer.Invoke'] }))).status,
      200,
    );
  });

  it('refuses alg none and an HS256 token keyed with the public key', async () => {
    await start(config());
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: issuer.issuer, aud: AUDIENCE, sub: 'x', iat: now, exp: now + 600 };
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
    await refused(unsigned, 401, 'invalid_token', /accepted asymmetric algorithm/);
    const secret = new TextEncoder().encode(JSON.stringify(first.jwk));
    const confused = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: first.kid })
      .sign(secret);
    await refused(confused, 401, 'invalid_token', /accepted asymmetric algorithm/);
  });

  it('refuses a token with a forged signature', async () => {
    await start(config());
    const [head, payload] = (await issuer.token(first)).split('.');
    const other = await issuer.token(await signingKey('key-1'));
    await refused(`${head}.${payload}.${other.split('.')[2]}`, 401, 'invalid_token', /signature is invalid/);
  });

  it('answers 503 while the key set cannot be fetched, and recovers', async () => {
    await start(config({ jwksCooldownSeconds: 0 }));
    issuer.down = true;
    const reply = await score(await issuer.token(first));
    assert.equal(reply.status, 503, reply.text);
    assert.match((reply.body as { error: string }).error, /signing keys cannot be fetched now/);
    issuer.down = false;
    assert.equal((await score(await issuer.token(first))).status, 200);
  });

  it('with API keys too, accepts either: a key, or a valid token; refuses anything else', async () => {
    await start(config(), ['k-alpha-1']);
    assert.equal((await score(undefined, { 'x-api-key': 'k-alpha-1' })).status, 200);
    assert.equal((await score('k-alpha-1')).status, 200);
    assert.equal((await score(await issuer.token(first))).status, 200);
    const wrongKey = await score('k-alpha-2');
    assert.equal(wrongKey.status, 401);
    assert.match(wrongKey.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.match(
      (wrongKey.body as { error: string }).error,
      /access token as Authorization: Bearer TOKEN, or an API key/,
    );
    await refused(await issuer.token(first, { aud: 'api://elsewhere' }), 401, 'invalid_token', /audience/);
  });
});

describe('scorer OIDC settings', () => {
  const base = { MODEL_URI: 'file:///models/m.onnx' };
  const problems = (env: Record<string, string>): string => {
    try {
      parseConfig({ ...base, ...env }, () => '');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems.join('\n');
    }
    return '';
  };

  it('derives the key set of an Entra ID v2 issuer and reads audiences and roles', () => {
    const config = parseConfig(
      {
        ...base,
        OIDC_ISSUER: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
        OIDC_AUDIENCES: 'api://fnol-scorer, 0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d',
        OIDC_REQUIRED_ROLES: 'Scorer.Invoke',
      },
      () => '',
    );
    assert.equal(
      config.oidc?.jwksUri.href,
      'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys',
    );
    assert.deepEqual(config.oidc?.audiences, ['api://fnol-scorer', '0b5a6c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d']);
    assert.deepEqual(config.oidc?.requiredRoles, ['Scorer.Invoke']);
    assert.equal(config.oidc?.clockSkewSeconds, 60);
  });

  it('refuses plain http off loopback, a missing audience, and a key set it cannot derive', () => {
    assert.match(
      problems({ OIDC_ISSUER: 'http://issuer.example/', OIDC_AUDIENCES: 'a' }),
      /OIDC_ISSUER must use https/,
    );
    assert.match(problems({ OIDC_ISSUER: 'https://issuer.example/' }), /OIDC_AUDIENCES is empty/);
    assert.match(
      problems({ OIDC_ISSUER: 'https://issuer.example/', OIDC_AUDIENCES: 'a' }),
      /OIDC_JWKS_URI is not set and OIDC_ISSUER is not an Entra ID v2 issuer/,
    );
    assert.match(problems({ OIDC_AUDIENCES: 'a' }), /set without OIDC_ISSUER/);
  });
});
