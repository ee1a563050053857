// The scorer's configuration: read from the environment once at start-up, checked
// as a whole, and handed to the rest of the program as a typed, frozen object.

import { totalmem } from 'node:os';
import {
  checkTarget,
  DEFAULT_ALLOWED_HOSTS,
  ModelFetchError,
  parseAllowedHosts,
  parseAuthorityHosts,
  PolicyConfigError,
  workloadIdentityFromEnv,
  type FetchPolicy,
  type WorkloadIdentityConfig,
} from '@fnol/model-fetch';
import type { OidcConfig } from './oidc';
import { parsePayloadLog, type PayloadLogConfig } from './payload-log/config';
import type { TracingConfig } from './tracing';

export interface ScorerConfig {
  readonly model: ModelSourceConfig;
  readonly port: number;
  readonly host: string;
  readonly apiKeysFile: string | undefined;
  readonly shutdownGraceSeconds: number;
  readonly logLevel: LogLevel;
  readonly limits: RequestLimits;
  readonly intraOpThreads: number;
  readonly predictionBuckets: readonly number[];
  /** Seconds between two reads of API_KEYS_FILE (keys are reloaded when it changes). */
  readonly apiKeysReloadSeconds: number;
  /** Mirroring of scoring requests to a candidate version; undefined unless SHADOW_URL is set. */
  readonly shadow: ShadowConfig | undefined;
  /** OIDC bearer tokens accepted from callers (OIDC_*); undefined unless OIDC_ISSUER is set. */
  readonly oidc?: OidcConfig | undefined;
  /** Payload logging (PAYLOAD_LOG_*); undefined unless PAYLOAD_LOG_SAMPLE_RATE is above 0. */
  readonly payloadLog: PayloadLogConfig | undefined;
  /** Drift monitoring against the model's reference distributions (DRIFT_*). */
  readonly drift: DriftConfig;
  /** OTLP export of the server spans; undefined (off) unless OTEL_TRACES_EXPORTER=otlp. */
  readonly tracing: TracingConfig | undefined;
}

export interface DriftConfig {
  /** DRIFT=off turns it off; on by default (a model without references has none anyway). */
  readonly enabled: boolean;
  /** Records the PSI is computed over: the last DRIFT_WINDOW scored. */
  readonly window: number;
  /** No PSI is exported before the window holds this many records. */
  readonly minRecords: number;
  /** The PSI is recomputed at most this often (when /metrics is read). */
  readonly updateSeconds: number;
}

export interface ShadowConfig {
  /** Base URL of the candidate scorer (http or https, no query); the request's path is appended. */
  readonly url: URL;
  /** Share of successful scoring requests mirrored, 0 to 100. */
  readonly percent: number;
  /** The model version the candidate must answer with. */
  readonly version: string;
  /** Copies waiting for a worker; more are dropped. */
  readonly queueSize: number;
  /** Copies sent at once. */
  readonly concurrency: number;
  /** Time allowed to one copy, from sending it to the candidate's last byte. */
  readonly timeoutMs: number;
  /** A record whose relative difference is over this counts as exceeding. */
  readonly diffThreshold: number;
  /** The first timed copies, answered by a candidate still warming up, are left out of the latency figures. */
  readonly warmupCopies: number;
  /** How long a batch of copies waits for more before it is sent, when no request to the candidate is on its way. */
  readonly lingerMs: number;
}

export interface ModelSourceConfig {
  readonly uri: URL;
  readonly sha256: string | undefined;
  readonly name: string | undefined;
  readonly version: string | undefined;
  /** Azure SAS token (without the leading "?"); appended to the URL at fetch time only. */
  readonly sasToken: string | undefined;
  readonly maxBytes: number;
  readonly fetchAttempts: number;
  /** Total time of one download, every attempt and back-off included. */
  readonly fetchTimeoutMs: number;
  readonly retryBaseDelayMs: number;
  /** Hosts and schemes the model may come from (MODEL_ALLOWED_HOSTS, MODEL_LOCAL_MODE). */
  readonly policy: FetchPolicy;
  /** Azure AD workload identity (MODEL_IDENTITY=WorkloadIdentity): a bearer token instead of a SAS token. */
  readonly identity?: WorkloadIdentityConfig | undefined;
}

export interface RequestLimits {
  readonly maxBodyBytes: number;
  readonly maxBatchRecords: number;
  /** Overload protection; see OverloadLimits at the end of this file. */
  readonly overload: OverloadLimits;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_PREDICTION_BUCKETS = [
  0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 1, 10, 100, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
  1000000,
];

/** One problem per bad variable, each naming it and saying what to do. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;
type ReadFile = (path: string) => string;

export function parseConfig(env: Env, readFile: ReadFile): ScorerConfig {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(
        `${name}=${JSON.stringify(raw)} is not an integer between ${min} and ${max}; fix or unset it`,
      );
      return fallback;
    }
    return Number(raw);
  };

  const policy = parsePolicy(text('MODEL_ALLOWED_HOSTS'), text('MODEL_LOCAL_MODE'), problems);
  const uri = parseModelUri(text('MODEL_URI'), problems);
  if (uri !== undefined && uri.protocol !== 'file:' && policy !== undefined) {
    try {
      checkTarget(uri.href, policy);
    } catch (error) {
      if (!(error instanceof ModelFetchError)) throw error;
      problems.push(`MODEL_URI refused: ${error.message}`);
    }
  }

  let sha256 = text('MODEL_SHA256')?.toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
    problems.push(
      `MODEL_SHA256 must be 64 hexadecimal digits (got ${sha256.length} characters); set it to the output of sha256sum on the model file`,
    );
    sha256 = undefined;
  } else if (sha256 === undefined && uri !== undefined && uri.protocol !== 'file:') {
    problems.push(
      `MODEL_SHA256 is required for a remote MODEL_URI (${uri.protocol}//); set it to the sha256 of the published model file`,
    );
  }

  const sasToken = readSasToken(text('MODEL_SAS_TOKEN_FILE'), text('MODEL_SAS_TOKEN'), readFile, problems);
  if (sasToken !== undefined && uri?.protocol === 'file:') {
    problems.push(
      'a SAS token is set but MODEL_URI is a file:// URI; unset MODEL_SAS_TOKEN(_FILE) or use https://',
    );
  }

  const identity = parseIdentity(env, text, sasToken !== undefined, uri, problems);

  const apiKeysFile = text('API_KEYS_FILE');
  if (apiKeysFile !== undefined) {
    try {
      readFile(apiKeysFile);
    } catch (error) {
      problems.push(
        `API_KEYS_FILE=${apiKeysFile} cannot be read (${errorCode(error)}); mount the key file there`,
      );
    }
  }

  const logLevel = (text('LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);
  }

  const predictionBuckets = parseBuckets(text('PREDICTION_BUCKETS'), problems);

  const config: ScorerConfig = {
    model: {
      uri: uri ?? new URL('file:///invalid'),
      sha256,
      name: text('MODEL_NAME'),
      version: text('MODEL_VERSION'),
      sasToken,
      maxBytes: integer('MODEL_MAX_BYTES', 256 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024),
      fetchAttempts: integer('MODEL_FETCH_ATTEMPTS', 6, 1, 50),
      fetchTimeoutMs: integer('MODEL_FETCH_TIMEOUT_SECONDS', 120, 1, 3600) * 1000,
      retryBaseDelayMs: integer('MODEL_FETCH_RETRY_BASE_MS', 500, 1, 60_000),
      policy: policy ?? { allowedHosts: [], localMode: false },
      identity,
    },
    port: integer('PORT', 8080, 0, 65535),
    host: text('HOST') ?? '0.0.0.0',
    apiKeysFile,
    shutdownGraceSeconds: integer('SHUTDOWN_GRACE_SECONDS', 25, 0, 3600),
    logLevel: logLevel as LogLevel,
    limits: parseRequestLimits(env, integer, problems),
    intraOpThreads: integer('ORT_INTRA_OP_THREADS', 1, 0, 256),
    predictionBuckets,
    apiKeysReloadSeconds: integer('API_KEYS_RELOAD_SECONDS', 10, 1, 3600),
    shadow: parseShadow(text, integer, problems),
    oidc: parseOidc(text, integer, problems, policy?.localMode ?? false),
    payloadLog: parsePayloadLog(text, integer, readFile, policy, problems),
    drift: parseDrift(text, integer, problems),
    tracing: parseTracing(text, integer, problems),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

function parsePolicy(
  hosts: string | undefined,
  localMode: string | undefined,
  problems: string[],
): FetchPolicy | undefined {
  let local = false;
  if (localMode !== undefined) {
    const v = localMode.toLowerCase();
    if (['true', '1', 'yes'].includes(v)) local = true;
    else if (!['false', '0', 'no'].includes(v)) {
      problems.push(`MODEL_LOCAL_MODE=${JSON.stringify(localMode)} is not true or false; fix or unset it`);
    }
  }
  try {
    return { allowedHosts: parseAllowedHosts(hosts ?? DEFAULT_ALLOWED_HOSTS), localMode: local };
  } catch (error) {
    if (!(error instanceof PolicyConfigError)) throw error;
    problems.push(error.message);
    return undefined;
  }
}

function parseModelUri(raw: string | undefined, problems: string[]): URL | undefined {
  if (raw === undefined) {
    problems.push(
      'MODEL_URI is not set; set it to file:///models/NAME.onnx or https://ACCOUNT.blob.core.windows.net/...',
    );
    return undefined;
  }
  let uri: URL;
  try {
    uri = new URL(raw);
  } catch {
    problems.push(
      'MODEL_URI is not a valid URI; use file:///path/model.onnx or https://host/path/model.onnx',
    );
    return undefined;
  }
  if (!['file:', 'http:', 'https:'].includes(uri.protocol)) {
    problems.push(`MODEL_URI scheme ${uri.protocol} is not supported; use file://, https:// or http://`);
    return undefined;
  }
  for (const key of uri.searchParams.keys()) {
    if (key.toLowerCase() === 'sig') {
      // The URI shows up in specs and logs; the token belongs in a secret.
      problems.push(
        'MODEL_URI carries a SAS signature (sig=); remove the query string and put the token in MODEL_SAS_TOKEN_FILE',
      );
      return undefined;
    }
  }
  if (uri.username !== '' || uri.password !== '') {
    problems.push('MODEL_URI carries credentials (user:password@); remove them and use MODEL_SAS_TOKEN_FILE');
    return undefined;
  }
  return uri;
}

function readSasToken(
  file: string | undefined,
  inline: string | undefined,
  readFile: ReadFile,
  problems: string[],
): string | undefined {
  let token = inline;
  if (file !== undefined) {
    try {
      token = readFile(file).trim();
    } catch (error) {
      problems.push(
        `MODEL_SAS_TOKEN_FILE=${file} cannot be read (${errorCode(error)}); mount the secret there`,
      );
      return undefined;
    }
  }
  if (token === undefined) return undefined;
  token = token.replace(/^\?/, '');
  const source = file !== undefined ? 'MODEL_SAS_TOKEN_FILE' : 'MODEL_SAS_TOKEN';
  // Never echo the token itself: it is a credential.
  if (token === '' || /[\s#]/.test(token) || !new URLSearchParams(token).has('sig')) {
    problems.push(
      `${source} does not hold a SAS token (a query string with sig=...); check the secret's content`,
    );
    return undefined;
  }
  return token;
}

function parseBuckets(raw: string | undefined, problems: string[]): number[] {
  if (raw === undefined) return DEFAULT_PREDICTION_BUCKETS;
  const values = raw.split(',').map((v) => Number(v.trim()));
  const sorted = values.every((v, i) => Number.isFinite(v) && (i === 0 || v > (values[i - 1] as number)));
  if (!sorted || values.length === 0) {
    problems.push(
      'PREDICTION_BUCKETS must be a comma-separated increasing list of numbers, e.g. 10,100,1000',
    );
    return DEFAULT_PREDICTION_BUCKETS;
  }
  return values;
}

type TextReader = (name: string) => string | undefined;

/**
 * OpenTelemetry's standard variables for the span exporter. Exporting is on
 * only with OTEL_TRACES_EXPORTER=otlp (trace context is propagated regardless).
 */
function parseTracing(
  text: TextReader,
  integer: IntegerReader,
  problems: string[],
): TracingConfig | undefined {
  const exporter = (text('OTEL_TRACES_EXPORTER') ?? 'none').toLowerCase();
  if (exporter !== 'none' && exporter !== 'otlp') {
    problems.push(
      `OTEL_TRACES_EXPORTER=${JSON.stringify(exporter.slice(0, 40))} is not supported; use "otlp" (OTLP/HTTP JSON) or "none"`,
    );
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = text(name);
    if (protocol !== undefined && protocol !== 'http/json') {
      problems.push(
        `${name}=${JSON.stringify(protocol.slice(0, 40))} is not supported; the scorer exports http/json`,
      );
    }
  }
  const settings = {
    serviceName: text('OTEL_SERVICE_NAME') ?? 'scorer',
    maxQueueSize: integer('OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1, 100_000),
    maxBatchSize: integer('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1, 100_000),
    scheduleDelayMs: integer('OTEL_BSP_SCHEDULE_DELAY', 5000, 1, 600_000),
    timeoutMs: integer('OTEL_EXPORTER_OTLP_TIMEOUT', 10_000, 1, 600_000),
  };
  const full = text('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = text('OTEL_EXPORTER_OTLP_ENDPOINT');
  const name = full !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  const raw =
    full ??
    (base === undefined ? 'http://localhost:4318/v1/traces' : `${base.replace(/\/+$/, '')}/v1/traces`);
  let endpoint: URL | undefined;
  try {
    endpoint = new URL(raw);
  } catch {
    problems.push(`${name} is not a valid URL; use e.g. http://otel-collector.monitoring:4318`);
  }
  if (endpoint !== undefined) {
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
      problems.push(`${name} scheme ${endpoint.protocol} is not supported; use http:// or https://`);
    }
    if (endpoint.username !== '' || endpoint.password !== '') {
      problems.push(`${name} carries credentials (user:password@); remove them`);
    }
  }
  if (settings.maxBatchSize > settings.maxQueueSize) {
    problems.push('OTEL_BSP_MAX_EXPORT_BATCH_SIZE is more than OTEL_BSP_MAX_QUEUE_SIZE; lower it');
  }
  if (exporter !== 'otlp' || endpoint === undefined) return undefined;
  return { endpoint, ...settings };
}

function parseDrift(text: TextReader, integer: IntegerReader, problems: string[]): DriftConfig {
  const mode = (text('DRIFT') ?? 'on').toLowerCase();
  if (mode !== 'on' && mode !== 'off') {
    problems.push(`DRIFT=${JSON.stringify(mode.slice(0, 40))} is not "on" or "off"; fix or unset it`);
  }
  const window = integer('DRIFT_WINDOW', 10_000, 100, 1_000_000);
  const minRecords = integer('DRIFT_MIN_RECORDS', Math.min(1000, window), 1, 1_000_000);
  if (minRecords > window) {
    problems.push(
      `DRIFT_MIN_RECORDS=${minRecords} is more than DRIFT_WINDOW=${window}: no PSI would ever be exported; lower it`,
    );
  }
  return {
    enabled: mode !== 'off',
    window,
    minRecords,
    updateSeconds: integer('DRIFT_UPDATE_SECONDS', 5, 0, 3600),
  };
}

/**
 * SHADOW_*: every value is checked even without SHADOW_URL (a typo is reported,
 * not ignored), and mirroring is on only when SHADOW_URL is set.
 */
function parseShadow(text: TextReader, integer: IntegerReader, problems: string[]): ShadowConfig | undefined {
  const decimal = (name: string, fallback: number, min: number, max: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+(?:\.\d+)?(?:e-?\d+)?$/i.test(raw) || !(value >= min && value <= max)) {
      problems.push(
        `${name}=${JSON.stringify(raw)} is not a number between ${min} and ${max}; fix or unset it`,
      );
      return fallback;
    }
    return value;
  };
  const percent = decimal('SHADOW_PERCENT', 100, 0, 100);
  const diffThreshold = decimal('SHADOW_DIFF_THRESHOLD', 0.01, 0, 1e9);
  const queueSize = integer('SHADOW_QUEUE_SIZE', 256, 1, 100_000);
  const concurrency = integer('SHADOW_CONCURRENCY', 8, 1, 1024);
  const timeoutMs = integer('SHADOW_TIMEOUT_MS', 2000, 10, 600_000);
  const warmupCopies = integer('SHADOW_WARMUP_COPIES', 20, 0, 100_000);
  const lingerMs = integer('SHADOW_LINGER_MS', 50, 0, 1000);
  const version = text('SHADOW_VERSION');
  const raw = text('SHADOW_URL');
  if (raw === undefined) return undefined;
  const url = parseShadowUrl(raw, problems);
  if (version === undefined) {
    problems.push(
      "SHADOW_VERSION is not set but SHADOW_URL is; set it to the candidate's model version (its answers are checked against it)",
    );
  } else if (!/^[\w.+-]{1,128}$/.test(version)) {
    problems.push(
      `SHADOW_VERSION=${JSON.stringify(version.slice(0, 140))} is not a model version (letters, digits, . _ + -, at most 128); fix it`,
    );
  }
  if (url === undefined || version === undefined) return undefined;
  return { url, percent, version, queueSize, concurrency, timeoutMs, diffThreshold, warmupCopies, lingerMs };
}

function parseShadowUrl(raw: string, problems: string[]): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push(
      'SHADOW_URL is not a valid URL; use the base URL of the candidate, e.g. http://fnol-canary.ns.svc.cluster.local:80',
    );
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`SHADOW_URL scheme ${url.protocol} is not supported; use http:// or https://`);
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    // Copies carry the caller's own key; the URL is logged and shown by GET /shadow.
    problems.push('SHADOW_URL carries credentials (user:password@); remove them');
    return undefined;
  }
  if (url.search !== '' || url.hash !== '') {
    problems.push(
      'SHADOW_URL has a query string or fragment; give the base URL only (the request path is appended)',
    );
    return undefined;
  }
  return url;
}

/** MODEL_IDENTITY=WorkloadIdentity: the AZURE_* settings the AKS webhook injects, checked now. */
function parseIdentity(
  env: Env,
  text: TextReader,
  hasSasToken: boolean,
  uri: URL | undefined,
  problems: string[],
): WorkloadIdentityConfig | undefined {
  const kind = text('MODEL_IDENTITY');
  if (kind === undefined || kind === 'None') return undefined;
  if (kind !== 'WorkloadIdentity') {
    problems.push(
      `MODEL_IDENTITY=${JSON.stringify(kind.slice(0, 40))} is not WorkloadIdentity or None; fix or unset it`,
    );
    return undefined;
  }
  if (hasSasToken) {
    problems.push('MODEL_IDENTITY=WorkloadIdentity and a SAS token are both set; use one of them');
  }
  if (uri !== undefined && uri.protocol !== 'https:') {
    problems.push(
      `MODEL_IDENTITY=WorkloadIdentity needs an https:// MODEL_URI (got ${uri.protocol}); an access token is sent over https only`,
    );
  }
  let authorities;
  try {
    authorities = parseAuthorityHosts(text('MODEL_TOKEN_AUTHORITY_HOSTS'));
  } catch (error) {
    if (!(error instanceof PolicyConfigError)) throw error;
    problems.push(error.message);
    return undefined;
  }
  const found = workloadIdentityFromEnv(env, authorities, text('MODEL_IDENTITY_CLIENT_ID'));
  problems.push(...found.problems.map((p) => `MODEL_IDENTITY=WorkloadIdentity: ${p}`));
  return found.config;
}

const OIDC_ISSUER_HELP = 'e.g. https://login.microsoftonline.com/TENANT_ID/v2.0';

/**
 * OIDC_*: bearer tokens from an OpenID Connect issuer (Entra ID). The key set
 * is fetched from OIDC_JWKS_URI, or for an Entra ID v2 issuer from its
 * discovery/v2.0/keys. Plain http is accepted for loopback only (tests, local).
 */
function parseOidc(
  text: TextReader,
  integer: IntegerReader,
  problems: string[],
  localMode: boolean,
): OidcConfig | undefined {
  const issuer = text('OIDC_ISSUER');
  const rawAudiences = text('OIDC_AUDIENCES');
  const clockSkewSeconds = integer('OIDC_CLOCK_SKEW_SECONDS', 60, 0, 300);
  const jwksCacheSeconds = integer('OIDC_JWKS_CACHE_SECONDS', 600, 1, 86_400);
  const jwksCooldownSeconds = integer('OIDC_JWKS_COOLDOWN_SECONDS', 30, 0, 3600);
  if (issuer === undefined) {
    if (rawAudiences !== undefined || text('OIDC_JWKS_URI') !== undefined) {
      problems.push(
        `OIDC_AUDIENCES or OIDC_JWKS_URI is set without OIDC_ISSUER; set the issuer (${OIDC_ISSUER_HELP})`,
      );
    }
    return undefined;
  }
  const issuerUrl = oidcUrl('OIDC_ISSUER', issuer, problems, localMode);
  const audiences = (rawAudiences ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (audiences.length === 0) {
    problems.push('OIDC_AUDIENCES is empty; list the accepted audiences, e.g. api://fnol-scorer');
  }
  const requiredRoles = (text('OIDC_REQUIRED_ROLES') ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  let jwksUri: URL | undefined;
  const rawJwks = text('OIDC_JWKS_URI');
  if (rawJwks !== undefined) jwksUri = oidcUrl('OIDC_JWKS_URI', rawJwks, problems, localMode);
  else if (issuerUrl !== undefined) {
    const entra = /^\/([^/]+)\/v2\.0\/?$/.exec(issuerUrl.pathname);
    if (issuerUrl.hostname === 'login.microsoftonline.com' && entra) {
      jwksUri = new URL(`/${entra[1]}/discovery/v2.0/keys`, issuerUrl);
    } else {
      problems.push(
        `OIDC_JWKS_URI is not set and OIDC_ISSUER is not an Entra ID v2 issuer; set OIDC_JWKS_URI to the issuer's jwks_uri`,
      );
    }
  }
  if (issuerUrl === undefined || jwksUri === undefined || audiences.length === 0) return undefined;
  return {
    issuer,
    audiences,
    requiredRoles,
    jwksUri,
    clockSkewSeconds,
    jwksCacheSeconds,
    jwksCooldownSeconds,
  };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function oidcUrl(name: string, raw: string, problems: string[], localMode: boolean): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push(`${name} is not a URL; ${OIDC_ISSUER_HELP}`);
    return undefined;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (localMode || LOOPBACK.has(url.hostname)))) {
    problems.push(
      `${name} must use https:// (plain http only on loopback or with MODEL_LOCAL_MODE); ${OIDC_ISSUER_HELP}`,
    );
    return undefined;
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '') {
    problems.push(`${name} carries user information or a fragment; remove them`);
    return undefined;
  }
  return url;
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

// ---------------------------------------------------------------------------
// Request limits and overload protection (MAX_*, REQUEST_TIMEOUT_MS,
// MEMORY_LIMIT_BYTES, OVERLOAD_GUARD). Defaults are sized from the memory the
// process may use, so a pod with a larger limit admits more work.

export interface OverloadLimits {
  /** False only when OVERLOAD_GUARD=off (benchmarks): none of the limits below apply. */
  readonly enabled: boolean;
  /** The memory the defaults were sized from. */
  readonly memoryLimitBytes: number;
  /** Scoring requests (POST /score, v2 infer) being handled at once; more get 429. */
  readonly maxConcurrentRequests: number;
  /** Bytes of request bodies held at once by scoring requests; more get 429. */
  readonly maxInflightBodyBytes: number;
  /** Rows accepted for scoring and not yet scored; more get 429. */
  readonly maxQueuedRows: number;
  /** A scoring request not answered within this many ms gets 503 (408 while its body is still arriving). */
  readonly requestTimeoutMs: number;
  /** Deepest nesting of arrays and objects in a JSON body. */
  readonly maxJsonDepth: number;
}

const MiB = 1024 * 1024;
/** Memory kept for the runtime, the model and its session. */
const MEMORY_RESERVE = 256 * MiB;
/** A JSON body costs up to about this many times its size while held and parsed. */
export const BODY_MEMORY_FACTOR = 6;
/** A queued row (parsed values, tensor columns) is counted at this many bytes. */
const ROW_MEMORY = 16 * 1024;

/** The pod's memory limit (cgroup), or the machine's memory when there is none. */
export function detectMemoryLimit(): number {
  const total = totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < total ? constrained : total;
}

type IntegerReader = (name: string, fallback: number, min: number, max: number) => number;

/** Defaults of the overload limits for a memory limit and a body size. */
export function defaultOverloadLimits(
  memoryLimitBytes: number,
  maxBodyBytes: number,
  maxBatchRecords: number,
): OverloadLimits {
  const spare = Math.max(memoryLimitBytes - MEMORY_RESERVE, 64 * MiB);
  return {
    enabled: true,
    memoryLimitBytes,
    maxConcurrentRequests: Math.min(1024, Math.max(16, Math.floor(memoryLimitBytes / (4 * MiB)))),
    maxInflightBodyBytes: Math.max(maxBodyBytes, Math.floor(spare / BODY_MEMORY_FACTOR)),
    maxQueuedRows: Math.max(maxBatchRecords, Math.floor(spare / ROW_MEMORY)),
    requestTimeoutMs: 10_000,
    maxJsonDepth: 32,
  };
}

function parseRequestLimits(env: Env, integer: IntegerReader, problems: string[]): RequestLimits {
  const maxBodyBytes = integer('MAX_BODY_BYTES', 8 * MiB, 1024, 1024 * MiB);
  const maxBatchRecords = integer('MAX_BATCH_RECORDS', 5000, 1, 1_000_000);
  const memoryLimitBytes = integer(
    'MEMORY_LIMIT_BYTES',
    detectMemoryLimit(),
    64 * MiB,
    Number.MAX_SAFE_INTEGER,
  );
  const d = defaultOverloadLimits(memoryLimitBytes, maxBodyBytes, maxBatchRecords);
  const guard = (env.OVERLOAD_GUARD?.trim() || 'on').toLowerCase();
  if (guard !== 'on' && guard !== 'off') {
    problems.push(`OVERLOAD_GUARD=${JSON.stringify(guard)} must be on or off (off is for benchmarks only)`);
  }
  const overload: OverloadLimits = {
    enabled: guard !== 'off',
    memoryLimitBytes,
    maxConcurrentRequests: integer('MAX_CONCURRENT_REQUESTS', d.maxConcurrentRequests, 1, 100_000),
    maxInflightBodyBytes: integer(
      'MAX_INFLIGHT_BODY_BYTES',
      d.maxInflightBodyBytes,
      maxBodyBytes,
      Number.MAX_SAFE_INTEGER,
    ),
    maxQueuedRows: integer('MAX_QUEUED_ROWS', d.maxQueuedRows, maxBatchRecords, 100_000_000),
    requestTimeoutMs: integer('REQUEST_TIMEOUT_MS', d.requestTimeoutMs, 100, 3_600_000),
    maxJsonDepth: integer('MAX_JSON_DEPTH', d.maxJsonDepth, 4, 1000),
  };
  return { maxBodyBytes, maxBatchRecords, overload };
}
