/**
 * Operator configuration: read once from the environment at start-up, validated,
 * and passed down as a typed object. A bad value stops the process with a message
 * naming the variable and what it accepts.
 */
import { existsSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import {
  DEFAULT_ALLOWED_HOSTS,
  parseAllowedHosts,
  parseAuthorityHosts,
  PolicyConfigError,
  type FetchPolicy,
  type HostPattern,
  type WorkloadIdentityConfig,
  workloadIdentityFromEnv,
} from '@fnol/model-fetch';

export interface OperatorConfig {
  /** Scorer image used when a FnolModel has no spec.image. */
  defaultScorerImage: string;
  /** Namespace to watch; '' watches every namespace. */
  watchNamespace: string;
  /** Fetch spec.model.uri and check its sha256 before rolling it out. */
  verifyModelDigest: boolean;
  modelFetchTimeoutMs: number;
  /** Extra CA certificates (PEM file) trusted when downloading models over https, e.g. a private blob endpoint. */
  modelCaFile: string;
  /** Largest model the digest check downloads, in bytes. */
  modelMaxBytes: number;
  /**
   * Hosts models may be downloaded from (MODEL_ALLOWED_HOSTS) and whether plain
   * http is allowed (MODEL_LOCAL_MODE); passed on to the scorer pods as well.
   */
  modelPolicy: FetchPolicy;
  /** Model checks (downloads) running at once, over all FnolModels. */
  modelChecksMaxConcurrent: number;
  /** Model checks running at once for the FnolModels of one namespace. */
  modelChecksPerNamespace: number;
  /** Every FnolModel is reconciled at least this often, even without events. */
  resyncPeriodMs: number;
  /** Reconciles running at once (each key is only ever handled by one). */
  workers: number;
  leaderElection: boolean;
  leaseName: string;
  leaseNamespace: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Port of /healthz, /readyz and /metrics; 0 picks a free port. */
  healthPort: number;
  healthHost: string;
  logLevel: string;
  fieldManager: string;
  /** Namespaces allowed to reach scorer pods (NetworkPolicy). */
  ingressControllerNamespaces: string[];
  monitoringNamespaces: string[];
  /** UID/GID the scorer runs as. */
  scorerUser: number;
  progressDeadlineSeconds: number;
  /** Scorer process log level passed as LOG_LEVEL. */
  scorerLogLevel: string;
  /** Where scorer pods may connect (NetworkPolicy egress): the model store's CIDRs and TCP ports. */
  modelStoreCidrs: string[];
  modelStorePorts: number[];
  /** The cluster DNS pods scorer pods may query (namespace and pod labels). */
  dnsNamespace: string;
  dnsPodLabels: Record<string, string>;
  /** The operator's own namespace (POD_NAMESPACE): scorer pods accept its pods on the scorer port (GET /shadow). */
  operatorNamespace: string;
  /** Entra ID hosts a federated token may be sent to (MODEL_TOKEN_AUTHORITY_HOSTS); passed on to the scorer pods. */
  tokenAuthorityHosts?: HostPattern[];
  /**
   * Egress for identity traffic (IDENTITY_EGRESS, host=CIDR|CIDR,...): the CIDRs of the
   * Entra ID token endpoint and of OIDC key set hosts. A scorer pod may reach only the
   * hosts its FnolModel needs (spec.model.identity, spec.auth.oidc), on port 443.
   */
  identityEgress?: Readonly<Record<string, readonly string[]>>;
  /**
   * The operator's own workload identity (AZURE_* from the AKS webhook, when
   * AZURE_FEDERATED_TOKEN_FILE is set): the digest check of FnolModels with spec.model.identity.
   */
  modelIdentity?: WorkloadIdentityConfig;
  /**
   * Trace export of every scorer pod (SCORER_TRACES_*), a cluster admin's
   * decision: the OTLP/HTTP collector the pods send their spans to, and where
   * their NetworkPolicy lets them reach it. Undefined: no export (the default).
   */
  scorerTraces?: ScorerTracesConfig;
}

export interface ScorerTracesConfig {
  /** Base URL of the collector (the scorer posts to <endpoint>/v1/traces), no trailing slash. */
  endpoint: string;
  /** TCP port of the endpoint (its own, or 80/443 by scheme): the only port egress opens. */
  port: number;
  /** The collector's address ranges (SCORER_TRACES_EGRESS_CIDRS). */
  egressCidrs: string[];
  /** The collector's namespaces (SCORER_TRACES_EGRESS_NAMESPACES), optionally narrowed to pods with these labels. */
  egressNamespaces: string[];
  egressPodLabels: Record<string, string>;
}

export class ConfigError extends Error {}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IMAGE = /^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Env = Record<string, string | undefined>;

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === '' ? fallback : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is invalid: expected an integer from ${min} to ${max}`,
    );
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected true or false`);
}

function namespaces(env: Env, name: string, fallback: string): string[] {
  const list = str(env, name, fallback)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const ns of list) {
    if (!DNS1123_LABEL.test(ns)) {
      throw new ConfigError(
        `${name} holds ${JSON.stringify(ns)}, which is not a namespace name (DNS-1123 label)`,
      );
    }
  }
  return list;
}

/** Parses the operator's environment; throws ConfigError naming the bad variable. */
export function loadConfig(env: Env = process.env): OperatorConfig {
  const defaultScorerImage = str(env, 'FNOL_SCORER_IMAGE', 'fnol-scorer:latest');
  if (!IMAGE.test(defaultScorerImage)) {
    throw new ConfigError(
      `FNOL_SCORER_IMAGE=${JSON.stringify(defaultScorerImage)} is not an image reference`,
    );
  }
  const watchNamespace = str(env, 'WATCH_NAMESPACE', '');
  if (watchNamespace !== '' && !DNS1123_LABEL.test(watchNamespace)) {
    throw new ConfigError(
      `WATCH_NAMESPACE=${JSON.stringify(watchNamespace)} is not a namespace name; leave it empty to watch all`,
    );
  }
  const operatorNamespace = str(env, 'POD_NAMESPACE', 'fnol-system');
  if (!DNS1123_LABEL.test(operatorNamespace)) {
    throw new ConfigError(`POD_NAMESPACE=${JSON.stringify(operatorNamespace)} is not a namespace name`);
  }
  const leaseNamespace = str(env, 'LEASE_NAMESPACE', operatorNamespace);
  if (!DNS1123_LABEL.test(leaseNamespace)) {
    throw new ConfigError(`LEASE_NAMESPACE=${JSON.stringify(leaseNamespace)} is not a namespace name`);
  }
  const logLevel = str(env, 'LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL=${JSON.stringify(logLevel)} is invalid: expected one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const scorerLogLevel = str(env, 'FNOL_SCORER_LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(scorerLogLevel)) {
    throw new ConfigError(
      `FNOL_SCORER_LOG_LEVEL=${JSON.stringify(scorerLogLevel)} is invalid: expected one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const leaseDurationMs = int(env, 'LEASE_DURATION_SECONDS', 15, 2, 300) * 1000;
  const renewDeadlineMs = int(env, 'LEASE_RENEW_DEADLINE_SECONDS', 10, 1, 300) * 1000;
  const retryPeriodMs = int(env, 'LEASE_RETRY_PERIOD_SECONDS', 2, 1, 60) * 1000;
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new ConfigError(
      'lease timing is invalid: need LEASE_RETRY_PERIOD_SECONDS < LEASE_RENEW_DEADLINE_SECONDS < LEASE_DURATION_SECONDS',
    );
  }
  const modelCaFile = str(env, 'MODEL_CA_FILE', '');
  if (modelCaFile !== '' && !existsSync(modelCaFile)) {
    throw new ConfigError(
      `MODEL_CA_FILE=${JSON.stringify(modelCaFile)} does not exist; point it at a PEM file or leave it empty`,
    );
  }
  let modelPolicy: FetchPolicy;
  let tokenAuthorityHosts: HostPattern[];
  try {
    modelPolicy = {
      allowedHosts: parseAllowedHosts(str(env, 'MODEL_ALLOWED_HOSTS', DEFAULT_ALLOWED_HOSTS)),
      localMode: bool(env, 'MODEL_LOCAL_MODE', false),
    };
    tokenAuthorityHosts = parseAuthorityHosts(env.MODEL_TOKEN_AUTHORITY_HOSTS?.trim() || undefined);
  } catch (err) {
    if (err instanceof PolicyConfigError) throw new ConfigError(err.message);
    throw err;
  }
  return {
    defaultScorerImage,
    watchNamespace,
    verifyModelDigest: bool(env, 'VERIFY_MODEL_DIGEST', true),
    modelFetchTimeoutMs: int(env, 'MODEL_FETCH_TIMEOUT_SECONDS', 120, 1, 3600) * 1000,
    modelCaFile,
    modelMaxBytes: int(env, 'MODEL_MAX_MEGABYTES', 2048, 1, 65536) * 1024 * 1024,
    modelPolicy,
    modelChecksMaxConcurrent: int(env, 'MODEL_CHECKS_MAX_CONCURRENT', 16, 1, 256),
    modelChecksPerNamespace: int(env, 'MODEL_CHECKS_PER_NAMESPACE', 4, 1, 256),
    resyncPeriodMs: int(env, 'RESYNC_PERIOD_SECONDS', 300, 5, 86400) * 1000,
    workers: int(env, 'WORKERS', 8, 1, 64),
    leaderElection: bool(env, 'LEADER_ELECTION', true),
    leaseName: str(env, 'LEASE_NAME', 'fnol-operator'),
    leaseNamespace,
    identity: str(env, 'POD_NAME', `${hostname()}-${process.pid}`),
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    healthPort: int(env, 'HEALTH_PORT', 8081, 0, 65535),
    healthHost: str(env, 'HEALTH_HOST', '0.0.0.0'),
    logLevel,
    fieldManager: str(env, 'FIELD_MANAGER', 'fnol-operator'),
    ingressControllerNamespaces: namespaces(env, 'INGRESS_CONTROLLER_NAMESPACES', 'ingress-nginx'),
    monitoringNamespaces: namespaces(env, 'MONITORING_NAMESPACES', 'monitoring'),
    scorerUser: int(env, 'FNOL_SCORER_UID', 10001, 1, 2147483647),
    progressDeadlineSeconds: int(env, 'PROGRESS_DEADLINE_SECONDS', 600, 30, 86400),
    scorerLogLevel,
    operatorNamespace,
    tokenAuthorityHosts,
    identityEgress: identityEgress(env),
    ...operatorIdentity(env, tokenAuthorityHosts),
    ...egressConfig(env),
    ...scorerTraces(env),
  };
}

// ---------------------------------------------------------------- egress (NetworkPolicy)

type EgressConfig = Pick<
  OperatorConfig,
  'modelStoreCidrs' | 'modelStorePorts' | 'dnsNamespace' | 'dnsPodLabels'
>;

function list(env: Env, name: string, fallback: string): string[] {
  const items = str(env, name, fallback)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0)
    throw new ConfigError(`${name} is empty; leave it unset for the default ${fallback}`);
  return items;
}

/** The address as a bit string (32 or 128 characters of 0 and 1). */
function addressBits(ip: string): string {
  if (isIPv4(ip)) {
    return ip
      .split('.')
      .map((o) => Number(o).toString(2).padStart(8, '0'))
      .join('');
  }
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
}

/**
 * A CIDR as the API server accepts it in a NetworkPolicy ipBlock: a valid
 * address, a prefix within range and no host bits set (10.0.0.0/8, not 10.1.2.3/8).
 */
function cidr(name: string, value: string): string {
  const m = /^([0-9a-fA-F.:]+)\/([0-9]{1,3})$/.exec(value);
  const ip = m?.[1] ?? '';
  const prefix = Number(m?.[2]);
  const v4 = isIPv4(ip);
  const v6 = !v4 && isIPv6(ip) && !ip.includes('.');
  if (!m || !(v4 || v6) || prefix > (v4 ? 32 : 128)) {
    throw new ConfigError(
      `${name} holds ${JSON.stringify(value)}, which is not a CIDR (e.g. 10.20.0.4/32 or fd00:10::/64)`,
    );
  }
  const bits = addressBits(ip);
  if (bits.slice(prefix).includes('1')) {
    const network = v4
      ? (bits.slice(0, prefix).padEnd(32, '0').match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)).join('.')
      : undefined;
    throw new ConfigError(
      `${name} holds ${JSON.stringify(value)}, which has host bits set; use the network address` +
        (network ? ` (${network}/${prefix})` : ` of that /${prefix}`),
    );
  }
  return value.toLowerCase();
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function egressConfig(env: Env): EgressConfig {
  const modelStoreCidrs = list(env, 'MODEL_STORE_CIDRS', '0.0.0.0/0').map((c) =>
    cidr('MODEL_STORE_CIDRS', c),
  );
  const modelStorePorts = list(env, 'MODEL_STORE_PORTS', '443').map((p) => {
    const n = Number(p);
    if (!/^[0-9]+$/.test(p) || n < 1 || n > 65535) {
      throw new ConfigError(
        `MODEL_STORE_PORTS holds ${JSON.stringify(p)}: expected TCP port numbers from 1 to 65535`,
      );
    }
    return n;
  });
  const dnsNamespace = str(env, 'DNS_NAMESPACE', 'kube-system');
  if (!DNS1123_LABEL.test(dnsNamespace)) {
    throw new ConfigError(
      `DNS_NAMESPACE=${JSON.stringify(dnsNamespace)} is not a namespace name (DNS-1123 label)`,
    );
  }
  const dnsPodLabels = labelPairs('DNS_POD_LABELS', list(env, 'DNS_POD_LABELS', 'k8s-app=kube-dns'));
  return { modelStoreCidrs, modelStorePorts, dnsNamespace, dnsPodLabels };
}

function labelPairs(name: string, pairs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    const key = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    if (i < 0 || !LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) {
      throw new ConfigError(
        `${name} holds ${JSON.stringify(pair.slice(0, 100))}: expected comma-separated key=value label pairs (e.g. k8s-app=kube-dns)`,
      );
    }
    labels[key] = value;
  }
  return labels;
}

/** A comma-separated list that may be empty. */
function optionalList(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * SCORER_TRACES_ENDPOINT (the OTLP/HTTP collector's base URL, e.g.
 * http://otel-collector.monitoring:4318) turns trace export on in every scorer
 * pod; SCORER_TRACES_EGRESS_NAMESPACES (with SCORER_TRACES_EGRESS_POD_LABELS)
 * and/or SCORER_TRACES_EGRESS_CIDRS say where the collector runs, so the scorer
 * pods' NetworkPolicy opens exactly that, on the endpoint's port. The URL may
 * carry no credentials: it is written into every scorer pod's spec.
 */
function scorerTraces(env: Env): { scorerTraces?: ScorerTracesConfig } {
  const raw = env.SCORER_TRACES_ENDPOINT?.trim() ?? '';
  const egressCidrs = optionalList(env, 'SCORER_TRACES_EGRESS_CIDRS').map((c) =>
    cidr('SCORER_TRACES_EGRESS_CIDRS', c),
  );
  const egressNamespaces = optionalList(env, 'SCORER_TRACES_EGRESS_NAMESPACES');
  for (const ns of egressNamespaces) {
    if (!DNS1123_LABEL.test(ns)) {
      throw new ConfigError(
        `SCORER_TRACES_EGRESS_NAMESPACES holds ${JSON.stringify(ns.slice(0, 100))}, which is not a namespace name (DNS-1123 label)`,
      );
    }
  }
  const podLabelPairs = optionalList(env, 'SCORER_TRACES_EGRESS_POD_LABELS');
  const egressPodLabels = labelPairs('SCORER_TRACES_EGRESS_POD_LABELS', podLabelPairs);
  if (raw === '') {
    if (egressCidrs.length > 0 || egressNamespaces.length > 0 || podLabelPairs.length > 0) {
      throw new ConfigError(
        'SCORER_TRACES_EGRESS_* is set but SCORER_TRACES_ENDPOINT is not: set the collector URL, or unset the egress settings',
      );
    }
    return {};
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      `SCORER_TRACES_ENDPOINT=${JSON.stringify(raw.slice(0, 100))} is not a URL; use the collector's OTLP/HTTP base URL, e.g. http://otel-collector.monitoring:4318`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`SCORER_TRACES_ENDPOINT must be http:// or https://, not ${url.protocol}//`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(
      'SCORER_TRACES_ENDPOINT carries credentials (user:password@), which would be written into every scorer pod; remove them and authenticate at the collector by network instead',
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ConfigError(
      'SCORER_TRACES_ENDPOINT has a query string or fragment; give the base URL only (the scorer posts to <endpoint>/v1/traces)',
    );
  }
  if (egressCidrs.length === 0 && egressNamespaces.length === 0) {
    throw new ConfigError(
      "SCORER_TRACES_ENDPOINT is set but the scorer pods may not reach it: set SCORER_TRACES_EGRESS_NAMESPACES (the collector's namespace) and/or SCORER_TRACES_EGRESS_CIDRS (its addresses)",
    );
  }
  if (podLabelPairs.length > 0 && egressNamespaces.length === 0) {
    throw new ConfigError(
      'SCORER_TRACES_EGRESS_POD_LABELS selects pods in SCORER_TRACES_EGRESS_NAMESPACES, which is empty; set it',
    );
  }
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const endpoint = url.href.replace(/\/+$/, '');
  return { scorerTraces: { endpoint, port, egressCidrs, egressNamespaces, egressPodLabels } };
}

/**
 * IDENTITY_EGRESS: `host=CIDR|CIDR,host=CIDR`, e.g.
 * `login.microsoftonline.com=20.190.128.0/18|40.126.0.0/18` (the AzureActiveDirectory
 * service tag). Empty by default: no identity egress at all.
 */
function identityEgress(env: Env): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const raw = env.IDENTITY_EGRESS?.trim() ?? '';
  for (const entry of raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')) {
    const i = entry.indexOf('=');
    const host = entry.slice(0, i).trim().toLowerCase();
    if (i <= 0 || !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(host)) {
      throw new ConfigError(
        `IDENTITY_EGRESS holds ${JSON.stringify(entry)}: expected host=CIDR|CIDR entries separated by commas (e.g. login.microsoftonline.com=20.190.128.0/18|40.126.0.0/18)`,
      );
    }
    out[host] = entry
      .slice(i + 1)
      .split('|')
      .map((c) => cidr('IDENTITY_EGRESS', c.trim()));
  }
  return out;
}

/** The operator's own workload identity, when the AKS webhook gave it one. */
function operatorIdentity(env: Env, authorities: HostPattern[]): { modelIdentity?: WorkloadIdentityConfig } {
  if (!env.AZURE_FEDERATED_TOKEN_FILE?.trim()) return {};
  const { config, problems } = workloadIdentityFromEnv(env, authorities);
  if (!config) throw new ConfigError(`the operator's workload identity: ${problems.join('; ')}`);
  return { modelIdentity: config };
}
