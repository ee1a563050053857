// PAYLOAD_LOG_*: payload logging's configuration, read with the rest of the
// scorer's environment. Off unless PAYLOAD_LOG_SAMPLE_RATE is above 0. The blob
// container must pass the model hosts' allow-list (MODEL_ALLOWED_HOSTS), so a
// FnolModel cannot make the scorer send requests to any host; the SAS token and
// the hashing key come from mounted files, never from the environment.

import { hostname } from 'node:os';
import { checkTarget, ModelFetchError, type FetchPolicy } from '@fnol/model-fetch';

export type RedactMode = 'hash' | 'drop';

export interface RedactConfig {
  /** Features redacted by name (PAYLOAD_LOG_REDACT_FIELDS). */
  readonly fields: readonly string[];
  /** Also redact every free-text feature: a string feature without a list of categories. */
  readonly freeText: boolean;
  readonly mode: RedactMode;
  /** The HMAC-SHA256 key (mode hash); read from PAYLOAD_LOG_HASH_KEY_FILE. */
  readonly hashKey: Buffer | undefined;
}

export type SinkConfig =
  | { readonly kind: 'stdout' }
  | {
      readonly kind: 'blob';
      /** https://ACCOUNT.blob.core.windows.net/CONTAINER (no query string). */
      readonly containerUrl: URL;
      /** SAS token without "?"; needs add, create and write on the container. */
      readonly sasToken: string;
    };

export interface PayloadLogConfig {
  /** Share of answered scoring requests logged, above 0 and at most 1. */
  readonly sampleRate: number;
  /** Seed of the sampler (reproducible sampling); undefined: random. */
  readonly seed: number | undefined;
  readonly sink: SinkConfig;
  readonly redact: RedactConfig;
  /** Records (rows) of logged requests waiting to be written; more are dropped. */
  readonly bufferRows: number;
  /** Serialised text waiting for the sink, in characters; more records are dropped. */
  readonly bufferBytes: number;
  /** Milliseconds between two writes to the sink. */
  readonly flushMs: number;
  /** Length of the time window of one blob, in seconds. */
  readonly windowSeconds: number;
  /** Time allowed to one write to the sink. */
  readonly writeTimeoutMs: number;
  /** The pod's name: part of every blob's name, so pods never write to the same blob. */
  readonly pod: string;
}

type TextReader = (name: string) => string | undefined;
type IntegerReader = (name: string, fallback: number, min: number, max: number) => number;
type ReadFile = (path: string) => string;

const FEATURE_NAME = /^[^\s,]{1,256}$/;

/** PAYLOAD_LOG_*; undefined when payload logging is off. Every value is checked even when off. */
export function parsePayloadLog(
  text: TextReader,
  integer: IntegerReader,
  readFile: ReadFile,
  policy: FetchPolicy | undefined,
  problems: string[],
): PayloadLogConfig | undefined {
  const rawRate = text('PAYLOAD_LOG_SAMPLE_RATE');
  let sampleRate = 0;
  if (rawRate !== undefined) {
    const value = Number(rawRate);
    if (!/^\d+(?:\.\d+)?(?:e-?\d+)?$/i.test(rawRate) || !(value >= 0 && value <= 1)) {
      problems.push(
        `PAYLOAD_LOG_SAMPLE_RATE=${JSON.stringify(rawRate)} is not a number between 0 and 1 (0.05 logs 5 % of requests); fix or unset it`,
      );
    } else sampleRate = value;
  }
  const rawSeed = text('PAYLOAD_LOG_SEED');
  let seed: number | undefined;
  if (rawSeed !== undefined) {
    if (/^\d{1,10}$/.test(rawSeed) && Number(rawSeed) <= 0xffffffff) seed = Number(rawSeed);
    else problems.push(`PAYLOAD_LOG_SEED=${JSON.stringify(rawSeed)} is not an integer from 0 to 4294967295`);
  }
  const bufferRows = integer('PAYLOAD_LOG_BUFFER_ROWS', 20_000, 1, 10_000_000);
  const bufferBytes = integer('PAYLOAD_LOG_BUFFER_BYTES', 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024);
  const flushMs = integer('PAYLOAD_LOG_FLUSH_MS', 2000, 10, 600_000);
  const windowSeconds = integer('PAYLOAD_LOG_WINDOW_SECONDS', 300, 1, 86_400);
  const writeTimeoutMs = integer('PAYLOAD_LOG_WRITE_TIMEOUT_MS', 10_000, 100, 600_000);
  const redact = parseRedact(text, readFile, problems);
  const sink = parseSink(text, readFile, policy, problems);
  const pod = (text('POD_NAME') ?? hostname()).replace(/[^\w.-]/g, '_').slice(0, 128) || 'scorer';
  if (sampleRate === 0 || sink === undefined || redact === undefined) return undefined;
  return {
    sampleRate,
    seed,
    sink,
    redact,
    bufferRows,
    bufferBytes,
    flushMs,
    windowSeconds,
    writeTimeoutMs,
    pod,
  };
}

function parseRedact(text: TextReader, readFile: ReadFile, problems: string[]): RedactConfig | undefined {
  const fields = (text('PAYLOAD_LOG_REDACT_FIELDS') ?? '')
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  const bad = fields.filter((f) => !FEATURE_NAME.test(f));
  if (bad.length > 0) {
    problems.push(
      `PAYLOAD_LOG_REDACT_FIELDS has ${bad.length} entries that are not feature names; give a comma-separated list of the model's feature names`,
    );
  }
  const rawFreeText = (text('PAYLOAD_LOG_REDACT_FREE_TEXT') ?? 'true').toLowerCase();
  if (!['true', 'false'].includes(rawFreeText)) {
    problems.push(
      `PAYLOAD_LOG_REDACT_FREE_TEXT=${JSON.stringify(rawFreeText)} is not true or false (true redacts every string feature without categories)`,
    );
  }
  const keyFile = text('PAYLOAD_LOG_HASH_KEY_FILE');
  let hashKey: Buffer | undefined;
  if (keyFile !== undefined) {
    try {
      hashKey = Buffer.from(readFile(keyFile).trim(), 'utf8');
    } catch (error) {
      problems.push(
        `PAYLOAD_LOG_HASH_KEY_FILE=${keyFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); mount the key's Secret there`,
      );
      return undefined;
    }
    // Never echo the key itself.
    if (hashKey.length < 16) {
      problems.push(
        `PAYLOAD_LOG_HASH_KEY_FILE holds ${hashKey.length} bytes; a hashing key needs at least 16 (e.g. openssl rand -hex 32)`,
      );
    }
  }
  const mode = (text('PAYLOAD_LOG_REDACT_MODE') ?? (hashKey !== undefined ? 'hash' : 'drop')).toLowerCase();
  if (mode !== 'hash' && mode !== 'drop') {
    problems.push(`PAYLOAD_LOG_REDACT_MODE=${JSON.stringify(mode)} is not hash or drop`);
    return undefined;
  }
  if (mode === 'hash' && hashKey === undefined) {
    problems.push(
      'PAYLOAD_LOG_REDACT_MODE=hash needs a key: mount a Secret and set PAYLOAD_LOG_HASH_KEY_FILE to its file, or use drop',
    );
    return undefined;
  }
  return { fields, freeText: rawFreeText !== 'false', mode, hashKey };
}

function parseSink(
  text: TextReader,
  readFile: ReadFile,
  policy: FetchPolicy | undefined,
  problems: string[],
): SinkConfig | undefined {
  const kind = (text('PAYLOAD_LOG_SINK') ?? 'stdout').toLowerCase();
  const rawUrl = text('PAYLOAD_LOG_CONTAINER_URL');
  const tokenFile = text('PAYLOAD_LOG_SAS_TOKEN_FILE');
  if (kind === 'stdout') {
    if (rawUrl !== undefined) {
      problems.push(
        'PAYLOAD_LOG_CONTAINER_URL is set but PAYLOAD_LOG_SINK is stdout; set the sink to blob or unset it',
      );
    }
    return { kind: 'stdout' };
  }
  if (kind !== 'blob') {
    problems.push(`PAYLOAD_LOG_SINK=${JSON.stringify(kind)} is not stdout or blob`);
    return undefined;
  }
  if (rawUrl === undefined) {
    problems.push(
      'PAYLOAD_LOG_SINK is blob but PAYLOAD_LOG_CONTAINER_URL is not set; set it to https://ACCOUNT.blob.core.windows.net/CONTAINER',
    );
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    problems.push(
      'PAYLOAD_LOG_CONTAINER_URL is not a valid URL; use https://ACCOUNT.blob.core.windows.net/CONTAINER',
    );
    return undefined;
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    // The URL is logged and shown in specs; the token belongs in a Secret.
    problems.push(
      'PAYLOAD_LOG_CONTAINER_URL carries a query string or credentials; give the container URL only and put the SAS token in PAYLOAD_LOG_SAS_TOKEN_FILE',
    );
    return undefined;
  }
  if (policy !== undefined) {
    try {
      checkTarget(url.href, policy);
    } catch (error) {
      if (!(error instanceof ModelFetchError)) throw error;
      problems.push(
        `PAYLOAD_LOG_CONTAINER_URL refused: ${error.message}; payload logs go only to the hosts of MODEL_ALLOWED_HOSTS`,
      );
      return undefined;
    }
  }
  if (tokenFile === undefined) {
    problems.push(
      'PAYLOAD_LOG_SINK is blob but PAYLOAD_LOG_SAS_TOKEN_FILE is not set; mount a Secret holding a SAS token with add, create and write permissions',
    );
    return undefined;
  }
  let token: string;
  try {
    token = readFile(tokenFile).trim().replace(/^\?/, '');
  } catch (error) {
    problems.push(
      `PAYLOAD_LOG_SAS_TOKEN_FILE=${tokenFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); mount the Secret there`,
    );
    return undefined;
  }
  if (token === '' || /[\s#]/.test(token) || !new URLSearchParams(token).has('sig')) {
    problems.push(
      "PAYLOAD_LOG_SAS_TOKEN_FILE does not hold a SAS token (a query string with sig=...); check the Secret's content",
    );
    return undefined;
  }
  return { kind: 'blob', containerUrl: new URL(url.href.replace(/\/+$/, '')), sasToken: token };
}
