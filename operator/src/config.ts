/**
 * Operator configuration: read once from the environment at start-up, validated,
 * and passed down as a typed object. A bad value stops the process with a message
 * naming the variable and what it accepts.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  DEFAULT_ALLOWED_HOSTS,
  parseAllowedHosts,
  PolicyConfigError,
  type FetchPolicy,
} from '../../lib/model-fetch/src/index';

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
  const leaseNamespace = str(env, 'LEASE_NAMESPACE', str(env, 'POD_NAMESPACE', 'fnol-system'));
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
  try {
    modelPolicy = {
      allowedHosts: parseAllowedHosts(str(env, 'MODEL_ALLOWED_HOSTS', DEFAULT_ALLOWED_HOSTS)),
      localMode: bool(env, 'MODEL_LOCAL_MODE', false),
    };
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
  };
}
