// Fetches the model bytes named by MODEL_URI: a mounted file or a blob over
// HTTP(S) (Azure Blob Storage, Azurite locally) through the project's one model
// fetcher (lib/model-fetch: allow-listed hosts, no redirects, one total deadline,
// retries with back-off for transient failures, a size cap), then checks the
// sha256. The SAS token is added at fetch time only. Nothing is written to disk.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  describeUri,
  fetchModelFile,
  ModelFetchError,
  WorkloadIdentityToken,
  type BearerTokenSource,
} from '@fnol/model-fetch';
import type { ModelSourceConfig } from './config';

export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

export interface FetchLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SourceDeps {
  readonly logger: FetchLogger;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /** The access token source of MODEL_IDENTITY (made from source.identity when not given). */
  readonly bearer?: BearerTokenSource;
  /** Extra trusted CA certificates (PEM) for https, added to the system's roots. */
  readonly ca?: string | Buffer;
}

export interface FetchedModel {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  /** The model card JSON beside the model, if there is one. */
  readonly card: unknown;
}

const MAX_CARD_BYTES = 1024 * 1024;

export async function fetchModel(source: ModelSourceConfig, deps: SourceDeps): Promise<FetchedModel> {
  // One token source for the model and its card: the access token is fetched once.
  if (source.identity !== undefined && deps.bearer === undefined) {
    deps = { ...deps, bearer: new WorkloadIdentityToken(source.identity) };
  }
  const fetched =
    source.uri.protocol === 'file:'
      ? hashed(await readLocal(fileURLToPath(source.uri), source.maxBytes, 'model'))
      : await download(source, source.uri, source.maxBytes, deps);
  if (fetched === undefined) {
    throw new ModelSourceError(`model file not found at ${describeUri(source.uri)}; check MODEL_URI`);
  }
  const { bytes, sha256 } = fetched;
  if (source.sha256 !== undefined && sha256 !== source.sha256) {
    throw new ModelSourceError(
      `model sha256 mismatch: ${describeUri(source.uri)} has sha256 ${sha256} but MODEL_SHA256 is ${source.sha256}; ` +
        'refusing to serve a model that is not the one published; fix MODEL_SHA256 or MODEL_URI',
    );
  }
  deps.logger.info({ uri: describeUri(source.uri), bytes: bytes.length, sha256 }, 'model fetched');
  const card = await fetchCard(source, deps);
  return { bytes, sha256, card };
}

function hashed(bytes: Uint8Array | undefined): { bytes: Uint8Array; sha256: string } | undefined {
  return bytes === undefined
    ? undefined
    : { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The URI as it may appear in logs and errors: no query string, no credentials. */
export { describeUri };

export function modelCardUri(uri: URL): URL {
  const card = new URL(uri.href);
  card.pathname = card.pathname.replace(/\.onnx$/i, '') + '.model-card.json';
  return card;
}

async function fetchCard(source: ModelSourceConfig, deps: SourceDeps): Promise<unknown> {
  const uri = modelCardUri(source.uri);
  try {
    const bytes =
      uri.protocol === 'file:'
        ? await readLocal(fileURLToPath(uri), MAX_CARD_BYTES, 'model card')
        : (await download({ ...source, fetchAttempts: 2 }, uri, MAX_CARD_BYTES, deps))?.bytes;
    if (bytes === undefined) return undefined;
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    // The card is informative; serving goes on without it.
    deps.logger.warn({ uri: describeUri(uri), err: String(error) }, 'model card not loaded');
    return undefined;
  }
}

async function readLocal(path: string, maxBytes: number, what: string): Promise<Uint8Array | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelSourceError(`cannot open ${what} ${path}: ${(error as Error).message}`);
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) {
      throw new ModelSourceError(
        `${what} ${path} is ${size} bytes, over the MODEL_MAX_BYTES limit of ${maxBytes}; raise MODEL_MAX_BYTES if it is right`,
      );
    }
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

async function download(
  source: ModelSourceConfig,
  uri: URL,
  maxBytes: number,
  deps: SourceDeps,
): Promise<{ bytes: Uint8Array; sha256: string } | undefined> {
  const shown = describeUri(uri);
  deps.logger.info({ uri: shown, attempts: source.fetchAttempts }, 'downloading');
  try {
    const got = await fetchModelFile(uri.href, {
      policy: source.policy,
      deadlineMs: source.fetchTimeoutMs,
      maxBytes,
      attempts: source.fetchAttempts,
      retryBaseDelayMs: source.retryBaseDelayMs,
      ...(source.sasToken !== undefined ? { sasToken: source.sasToken } : {}),
      ...(deps.bearer !== undefined ? { bearer: deps.bearer } : {}),
      ...(deps.ca !== undefined ? { ca: deps.ca } : {}),
      keepBody: true,
      ...(deps.random ? { random: deps.random } : {}),
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
      onRetry: ({ attempt, delayMs, error }) =>
        deps.logger.warn(
          { uri: shown, attempt, retryInMs: delayMs, reason: error.message.slice(shown.length + 2) },
          'download failed, retrying',
        ),
    });
    return { bytes: got.body ?? Buffer.alloc(0), sha256: got.sha256 };
  } catch (error) {
    if (!(error instanceof ModelFetchError)) throw error;
    if (error.kind === 'http-status' && error.status === 404) return undefined;
    const message = explain(error, maxBytes, source);
    deps.logger.warn({ uri: shown, reason: message }, 'model download failed');
    throw new ModelSourceError(message);
  }
}

/** The fetcher's error with what to check next; it already names the URI without its query. */
function explain(error: ModelFetchError, maxBytes: number, source: ModelSourceConfig): string {
  switch (error.kind) {
    case 'http-status':
      if (error.transient) {
        return `${error.message}, still failing after ${error.attempts} attempts; check that the storage is reachable`;
      }
      if ((error.status === 401 || error.status === 403) && source.identity !== undefined) {
        return `${error.message}; check that the managed identity has the Storage Blob Data Reader role on the model's container`;
      }
      return error.status === 401 || error.status === 403
        ? `${error.message}; check the SAS token (MODEL_SAS_TOKEN_FILE): it may be expired or lack read permission`
        : `${error.message}; check MODEL_URI`;
    case 'network':
    case 'truncated':
      return `${error.message}, still failing after ${error.attempts} attempts; check that the storage is reachable`;
    case 'too-large':
      return `${error.message}: over the MODEL_MAX_BYTES limit of ${maxBytes}; raise MODEL_MAX_BYTES if it is right`;
    case 'deadline':
      return `${error.message}; raise MODEL_FETCH_TIMEOUT_SECONDS or check the storage's throughput`;
    case 'host-not-allowed':
    case 'scheme-not-allowed':
      return `${error.message}; check MODEL_URI, MODEL_ALLOWED_HOSTS and MODEL_LOCAL_MODE`;
    default:
      return error.message;
  }
}
