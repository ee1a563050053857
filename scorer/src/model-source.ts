// Fetches the model bytes named by MODEL_URI: a mounted file or a blob over
// HTTP(S) (Azure Blob Storage, Azurite locally), with a SAS token added at fetch
// time, retries with exponential back-off on transient failures, a size cap and a
// sha256 check. Nothing is written to disk.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
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
}

export interface FetchedModel {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  /** The model card JSON beside the model, if there is one. */
  readonly card: unknown;
}

const TRANSIENT_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const MAX_CARD_BYTES = 1024 * 1024;

class TransientError extends Error {}

export async function fetchModel(source: ModelSourceConfig, deps: SourceDeps): Promise<FetchedModel> {
  const bytes =
    source.uri.protocol === 'file:'
      ? await readLocal(fileURLToPath(source.uri), source.maxBytes, 'model')
      : await download(source, source.uri, source.maxBytes, deps);
  if (bytes === undefined) {
    throw new ModelSourceError(`model file not found at ${describeUri(source.uri)}; check MODEL_URI`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
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

/** The URI as it may appear in logs and errors: no query string, no credentials. */
export function describeUri(uri: URL): string {
  return `${uri.protocol}//${uri.host}${uri.pathname}`;
}

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
        : await download({ ...source, fetchAttempts: 2 }, uri, MAX_CARD_BYTES, deps);
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
): Promise<Uint8Array | undefined> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = deps.random ?? Math.random;
  const shown = describeUri(uri);
  const target = new URL(uri.href);
  if (source.sasToken !== undefined) {
    for (const [key, value] of new URLSearchParams(source.sasToken)) target.searchParams.append(key, value);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      deps.logger.info({ uri: shown, attempt, of: source.fetchAttempts }, 'downloading');
      return await downloadOnce(target, shown, maxBytes, source.fetchTimeoutMs);
    } catch (error) {
      if (!(error instanceof TransientError) || attempt >= source.fetchAttempts) {
        if (error instanceof TransientError) {
          throw new ModelSourceError(
            `${shown}: ${error.message}, still failing after ${attempt} attempts; check that the storage is reachable`,
          );
        }
        throw error;
      }
      // Full jitter keeps many replicas from retrying in step.
      const delay = Math.round(source.retryBaseDelayMs * 2 ** (attempt - 1) * (0.5 + random() / 2));
      deps.logger.warn(
        { uri: shown, attempt, retryInMs: delay, reason: error.message },
        'download failed, retrying',
      );
      await sleep(delay);
    }
  }
}

async function downloadOnce(
  target: URL,
  shown: string,
  maxBytes: number,
  timeoutMs: number,
): Promise<Uint8Array | undefined> {
  let response: Response;
  try {
    response = await fetch(target, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (error) {
    // The error may quote the URL with its token: report only the cause's code.
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new TransientError(`request failed (${cause})`);
  }
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (TRANSIENT_STATUS.has(response.status)) {
    await response.body?.cancel();
    throw new TransientError(`HTTP ${response.status}`);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    const hint =
      response.status === 401 || response.status === 403
        ? 'check the SAS token (MODEL_SAS_TOKEN_FILE): it may be expired or lack read permission'
        : 'check MODEL_URI';
    throw new ModelSourceError(`${shown}: HTTP ${response.status}; ${hint}`);
  }
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new ModelSourceError(
      `${shown} is ${declared} bytes, over the MODEL_MAX_BYTES limit of ${maxBytes}; raise MODEL_MAX_BYTES if it is right`,
    );
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body ?? []) {
      total += chunk.length;
      if (total > maxBytes) {
        throw new ModelSourceError(
          `${shown} is over the MODEL_MAX_BYTES limit of ${maxBytes} bytes; raise MODEL_MAX_BYTES if it is right`,
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof ModelSourceError) throw error;
    throw new TransientError(`download interrupted after ${total} bytes`);
  }
  if (!Number.isNaN(declared) && total !== declared) {
    throw new TransientError(`download ended after ${total} of ${declared} bytes`);
  }
  return Buffer.concat(chunks);
}
