// Azure AD workload identity: the federated token the kubelet projects into the
// pod (AZURE_FEDERATED_TOKEN_FILE) is exchanged at the Entra ID token endpoint
// for an access token to Azure Storage (OAuth 2.0 client credentials with a
// client assertion), and that token is sent to blob storage instead of a SAS
// token. The exchange is written here rather than taken from @azure/identity so
// that the token endpoint goes through the same allow-list, deadline and
// cancellation as the download itself (docs/adr/0015-workload-identity.md).
//
// The federated token is a credential: whoever receives it can act as the
// managed identity. It is only ever sent to an allowed authority host over
// https, and neither it nor the access token appears in a message.
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { rootCertificates } from 'node:tls';
import { ModelFetchError } from './errors';
import { hostAllowed, parseAllowedHosts, type HostPattern } from './policy';

/** Entra ID's token endpoints in the public, US Government and China clouds. */
export const DEFAULT_AUTHORITY_HOSTS =
  'login.microsoftonline.com,login.microsoftonline.us,login.chinacloudapi.cn';

/** The audience of Azure Storage's access tokens. */
export const STORAGE_SCOPE = 'https://storage.azure.com/.default';

/** The Blob service version sent with a bearer token (OAuth needs 2017-11-09 or later). */
export const STORAGE_API_VERSION = '2021-12-02';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A tenant is a GUID or a verified domain name: one path segment, nothing that changes the URL. */
const TENANT =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9][a-z0-9.-]{0,252}[a-z0-9])$/i;
/** Answers of the token endpoint larger than this are not read. */
const MAX_TOKEN_ANSWER = 64 * 1024;

export interface WorkloadIdentityConfig {
  /** The application (client) ID of the managed identity or app registration. */
  readonly clientId: string;
  readonly tenantId: string;
  /** The projected service account token, read again for every exchange (the kubelet rotates it). */
  readonly tokenFile: string;
  /** https://HOST/ of the token endpoint, checked against the authority allow-list. */
  readonly authorityHost: URL;
  readonly scope: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads the workload identity settings the AKS webhook injects (AZURE_CLIENT_ID,
 * AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST);
 * `clientId` (from the FnolModel) takes the place of AZURE_CLIENT_ID when set.
 * Returns the problems, one per setting, each saying what to do.
 */
export function workloadIdentityFromEnv(
  env: Env,
  allowedAuthorities: readonly HostPattern[],
  clientId?: string,
): { config?: WorkloadIdentityConfig; problems: string[] } {
  const problems: string[] = [];
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const webhook =
    'the pod lacks the workload identity wiring: label it azure.workload.identity/use=true and run it as a ServiceAccount annotated with azure.workload.identity/client-id';
  const client = clientId ?? value('AZURE_CLIENT_ID');
  if (client === undefined) problems.push(`AZURE_CLIENT_ID is not set; ${webhook}`);
  else if (!GUID.test(client)) {
    problems.push('the workload identity client ID is not a GUID; use the clientId of the managed identity');
  }
  const tenantId = value('AZURE_TENANT_ID');
  if (tenantId === undefined) problems.push(`AZURE_TENANT_ID is not set; ${webhook}`);
  else if (!TENANT.test(tenantId)) {
    problems.push(
      'AZURE_TENANT_ID is not a tenant ID (a GUID or a domain name); fix the webhook configuration',
    );
  }
  const tokenFile = value('AZURE_FEDERATED_TOKEN_FILE');
  if (tokenFile === undefined) problems.push(`AZURE_FEDERATED_TOKEN_FILE is not set; ${webhook}`);
  const authorityHost = parseAuthority(value('AZURE_AUTHORITY_HOST'), allowedAuthorities, problems);
  if (problems.length > 0 || !client || !tenantId || !tokenFile || !authorityHost) return { problems };
  return {
    config: { clientId: client, tenantId, tokenFile, authorityHost, scope: STORAGE_SCOPE },
    problems,
  };
}

/** Parses MODEL_TOKEN_AUTHORITY_HOSTS (default: Entra ID's public and sovereign clouds). */
export function parseAuthorityHosts(raw: string | undefined): HostPattern[] {
  return parseAllowedHosts(raw ?? DEFAULT_AUTHORITY_HOSTS, 'MODEL_TOKEN_AUTHORITY_HOSTS');
}

function parseAuthority(
  raw: string | undefined,
  allowed: readonly HostPattern[],
  problems: string[],
): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw ?? 'https://login.microsoftonline.com/');
  } catch {
    problems.push('AZURE_AUTHORITY_HOST is not a URL; use https://login.microsoftonline.com/');
    return undefined;
  }
  if (url.protocol !== 'https:') {
    problems.push(
      `AZURE_AUTHORITY_HOST must use https:// (got ${url.protocol}); the federated token is a credential`,
    );
    return undefined;
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    problems.push(
      'AZURE_AUTHORITY_HOST carries user information, a query or a fragment; give https://HOST/ only',
    );
    return undefined;
  }
  if (!hostAllowed(url, allowed)) {
    problems.push(
      `AZURE_AUTHORITY_HOST ${url.host} is not on the token authority allow-list (${allowed.map((p) => p.text).join(',')}); ` +
        'the federated token is sent only to Entra ID; ask the cluster admin to extend MODEL_TOKEN_AUTHORITY_HOSTS for a sovereign cloud',
    );
    return undefined;
  }
  return url;
}

/** Something that gives a bearer token for blob storage. */
export interface BearerTokenSource {
  token(signal: AbortSignal): Promise<string>;
}

interface Cached {
  readonly value: string;
  readonly refreshAt: number;
}

/**
 * Exchanges the federated token for a storage access token and keeps it until
 * five minutes before it expires (or half its lifetime, if shorter).
 */
export class WorkloadIdentityToken implements BearerTokenSource {
  private cached: Cached | undefined;
  private pending: Promise<Cached> | undefined;

  constructor(
    readonly config: WorkloadIdentityConfig,
    private readonly options: {
      ca?: string | Buffer;
      now?: () => number;
      readFile?: (path: string) => string;
    } = {},
  ) {}

  private now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  /** Forgets the cached token (storage refused it). */
  invalidate(): void {
    this.cached = undefined;
  }

  async token(signal: AbortSignal): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAt) return this.cached.value;
    // One exchange at a time; concurrent downloads share it.
    this.pending ??= this.exchange(signal).finally(() => {
      this.pending = undefined;
    });
    this.cached = await this.pending;
    return this.cached.value;
  }

  private async exchange(signal: AbortSignal): Promise<Cached> {
    const { config } = this;
    const endpoint = new URL(
      `${encodeURIComponent(config.tenantId)}/oauth2/v2.0/token`,
      config.authorityHost,
    );
    const shown = `token endpoint ${endpoint.protocol}//${endpoint.host}`;
    let assertion: string;
    try {
      assertion = (this.options.readFile ?? ((p) => readFileSync(p, 'utf8')))(config.tokenFile).trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new ModelFetchError(
        'token',
        `the federated token file AZURE_FEDERATED_TOKEN_FILE cannot be read (${code}); check the pod's workload identity wiring`,
      );
    }
    if (assertion === '') {
      throw new ModelFetchError(
        'token',
        "the federated token file AZURE_FEDERATED_TOKEN_FILE is empty; check the pod's workload identity wiring",
      );
    }
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: config.clientId,
      scope: config.scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    }).toString();
    const started = this.now();
    const { status, body } = await post(endpoint, form, signal, this.options.ca, shown);
    let answer: {
      access_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
      error_description?: unknown;
    };
    try {
      answer = JSON.parse(body) as typeof answer;
    } catch {
      answer = {};
    }
    if (status !== 200) {
      // Entra ID's error code and AADSTS number say what is wrong (e.g. no federated
      // credential for this ServiceAccount); the rest of the answer is not repeated.
      const code =
        typeof answer.error === 'string' && /^[a-z_]{1,64}$/.test(answer.error) ? ` ${answer.error}` : '';
      const aadsts =
        typeof answer.error_description === 'string'
          ? /AADSTS\d{5,7}/.exec(answer.error_description)?.[0]
          : undefined;
      throw new ModelFetchError(
        'token',
        `${shown}: token request refused: HTTP ${status}${code}${aadsts ? ` (${aadsts})` : ''}; ` +
          'check the federated credential of the managed identity (issuer, subject system:serviceaccount:NAMESPACE:NAME, audience api://AzureADTokenExchange)',
        status >= 500 || status === 429,
        status,
      );
    }
    const token = answer.access_token;
    if (typeof token !== 'string' || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
      throw new ModelFetchError('token', `${shown}: the answer holds no access token`);
    }
    const lifetime = typeof answer.expires_in === 'number' ? answer.expires_in : Number(answer.expires_in);
    const seconds = Number.isFinite(lifetime) && lifetime > 0 ? lifetime : 300;
    const refreshIn = Math.min(seconds - 300, seconds / 2) * 1000;
    return { value: token, refreshAt: started + Math.max(0, refreshIn) };
  }
}

/** POSTs a form over https; the answer's body up to MAX_TOKEN_ANSWER. */
function post(
  url: URL,
  form: string,
  signal: AbortSignal,
  ca: string | Buffer | undefined,
  shown: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: ModelFetchError | undefined, value?: { status: number; body: string }) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      if (error) reject(error);
      else resolve(value!);
    };
    const onAbort = () => settle(new ModelFetchError('aborted', `${shown}: token request stopped`));
    const req = https.request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(form),
        accept: 'application/json',
        'user-agent': 'fnol-model-fetch',
      },
      ...(ca !== undefined ? { ca: [...rootCertificates, ca.toString()] } : {}),
    });
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return settle(
          new ModelFetchError(
            'token',
            `${shown}: token request redirected (HTTP ${status}); redirects are not followed`,
            false,
            status,
          ),
        );
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_TOKEN_ANSWER) {
          return settle(
            new ModelFetchError('token', `${shown}: the answer is over ${MAX_TOKEN_ANSWER} bytes`),
          );
        }
        chunks.push(chunk);
      });
      res.on('end', () => settle(undefined, { status, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => settle(new ModelFetchError('token', `${shown}: network error`, true)));
    });
    req.on('error', (error) => {
      const code = (error as NodeJS.ErrnoException).code;
      const shownCode = typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code : 'unknown';
      settle(new ModelFetchError('token', `${shown}: network error (${shownCode})`, true));
    });
    req.end(form);
  });
}
