// fnolctl logs export: a time window of the scorer's payload log (JSON Lines,
// docs/payload-logging.md) back into a CSV with the model's feature columns,
// its predictions and the model version, for retraining. Reads a blob container
// (a SAS token with read and list from --sas-token-file or
// FNOL_PAYLOAD_LOG_SAS_TOKEN), a file or a folder of files (e.g. collected
// stdout, where lines that are not payload records are skipped).
//
//   npm run fnolctl -- logs export --from URL|FILE|DIR --out OUT.csv
//                      [--since ISO] [--until ISO] [--model NAME] [--version V] [--sas-token-file F]

import { createReadStream, createWriteStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { AnonymousCredential, ContainerClient, RestError } from '@azure/storage-blob';

export const LOGS_USAGE = `usage: fnolctl logs export --from SOURCE --out OUT.csv [options]
  SOURCE   a blob container URL (https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]),
           a JSON Lines file, or a folder of .jsonl/.log files
  --since ISO, --until ISO   keep records answered at or after --since and before --until
  --model NAME, --model-version V  keep one model (required when the window holds several models)
  --sas-token-file FILE      SAS token (read, list) for a container; or FNOL_PAYLOAD_LOG_SAS_TOKEN
The CSV has one row per scored record: the model's features, its predictions, then
model_version, model_sha256, request_id and time.`;

export class LogsUsageError extends Error {}

interface LogRecord {
  schema: number;
  time: string;
  requestId: string;
  model: { name: string; version: string; sha256: string | null };
  features: string[];
  outputs: string[];
  /** Rows following features and outputs. */
  inputs: unknown[][];
  predictions: unknown[][];
}

export interface ExportOptions {
  readonly since: number | undefined;
  readonly until: number | undefined;
  readonly model: string | undefined;
  readonly version: string | undefined;
}

export interface ExportSummary {
  rows: number;
  requests: number;
  skippedLines: number;
  models: string[];
}

/** Payload-log lines of a window, as records; other lines (a collected stdout's own logs) are counted and skipped. */
export class WindowFilter {
  readonly summary: ExportSummary = { rows: 0, requests: 0, skippedLines: 0, models: [] };
  readonly kept: LogRecord[] = [];

  constructor(private readonly options: ExportOptions) {}

  add(line: string): void {
    if (line.trim() === '') return;
    let record: LogRecord;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      this.summary.skippedLines++;
      return;
    }
    if (!isLogRecord(record)) {
      this.summary.skippedLines++;
      return;
    }
    const time = Date.parse(record.time);
    const { since, until, model, version } = this.options;
    if ((since !== undefined && time < since) || (until !== undefined && time >= until)) return;
    if (
      (model !== undefined && record.model.name !== model) ||
      (version !== undefined && record.model.version !== version)
    )
      return;
    if (!this.summary.models.includes(record.model.name)) this.summary.models.push(record.model.name);
    if ((record as { part?: { index?: number } }).part?.index === 0 || !('part' in record))
      this.summary.requests++;
    this.summary.rows += record.inputs.length;
    this.kept.push(record);
  }
}

function isLogRecord(value: unknown): value is LogRecord {
  const r = value as LogRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.schema === 1 &&
    typeof r.time === 'string' &&
    !Number.isNaN(Date.parse(r.time)) &&
    typeof r.model?.name === 'string' &&
    typeof r.model?.version === 'string' &&
    isStrings(r.features) &&
    isStrings(r.outputs) &&
    Array.isArray(r.inputs) &&
    Array.isArray(r.predictions) &&
    r.inputs.length === r.predictions.length &&
    r.inputs.every((row) => Array.isArray(row) && row.length === r.features.length) &&
    r.predictions.every((row) => Array.isArray(row) && row.length === r.outputs.length)
  );
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** The CSV text of the kept records: features in the model's order, then predictions, then identity columns. */
export function toCsv(records: readonly LogRecord[]): string {
  const features: string[] = [];
  const outputs = new Map<string, number>(); // name -> width
  for (const line of records) {
    for (const name of line.features) if (!features.includes(name)) features.push(name);
    line.outputs.forEach((name, o) => {
      let width = outputs.get(name) ?? 1;
      for (const row of line.predictions) {
        const value = row[o];
        if (Array.isArray(value)) width = Math.max(width, value.length);
      }
      outputs.set(name, width);
    });
  }
  const outputColumns: string[] = [];
  for (const [name, width] of outputs) {
    if (width === 1) outputColumns.push(name);
    else for (let i = 0; i < width; i++) outputColumns.push(`${name}_${i}`);
  }
  const identity = ['model_version', 'model_sha256', 'request_id', 'time'];
  const taken = new Set(features);
  const clash = [...outputColumns, ...identity].find((c) => taken.has(c));
  if (clash !== undefined) {
    throw new Error(`the feature "${clash}" has the name of an added column; rename the column after export`);
  }
  const out: string[] = [[...features, ...outputColumns, ...identity].map(cell).join(',')];
  const widths = [...outputs.values()];
  for (const line of records) {
    const featureAt = features.map((f) => line.features.indexOf(f));
    const outputAt = [...outputs.keys()].map((name) => line.outputs.indexOf(name));
    line.inputs.forEach((inputs, r) => {
      const row: unknown[] = featureAt.map((i) => (i === -1 ? undefined : inputs[i]));
      const predictions = line.predictions[r] as unknown[];
      widths.forEach((width, k) => {
        const at = outputAt[k] as number;
        const value = at === -1 ? undefined : predictions[at];
        if (width === 1) row.push(Array.isArray(value) ? value[0] : value);
        else for (let i = 0; i < width; i++) row.push(Array.isArray(value) ? value[i] : undefined);
      });
      row.push(line.model.version, line.model.sha256, line.requestId, line.time);
      out.push(row.map(cell).join(','));
    });
  }
  return out.join('\n') + '\n';
}

/** One CSV cell (RFC 4180): missing is empty, text with , " or line breaks is quoted. */
function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text =
    typeof value === 'string' ? value : typeof value === 'number' ? String(value) : JSON.stringify(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

async function readLines(stream: Readable, filter: WindowFilter): Promise<void> {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of lines) filter.add(line);
}

/** Blobs whose window may overlap the export window: their name's time stamp is before --until. */
function blobMayOverlap(name: string, options: ExportOptions): boolean {
  const stamp = /(\d{8}T\d{6}Z)-[^/]*\.jsonl$/.exec(name)?.[1];
  if (stamp === undefined) return true;
  const start = Date.parse(
    `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}Z`,
  );
  // A window is at most a day long (PAYLOAD_LOG_WINDOW_SECONDS).
  if (options.since !== undefined && start + 86_400_000 <= options.since) return false;
  return options.until === undefined || start < options.until;
}

async function readContainer(
  source: URL,
  sas: string,
  filter: WindowFilter,
  options: ExportOptions,
): Promise<void> {
  // Azurite and other path-style endpoints put the account first: http://HOST:PORT/ACCOUNT/CONTAINER.
  const pathStyle = /^\d+\.\d+\.\d+\.\d+$|^localhost$/.test(source.hostname);
  const segments = source.pathname.split('/').filter((s) => s !== '');
  const depth = pathStyle ? 2 : 1;
  if (segments.length < depth) throw new LogsUsageError(`--from ${source.href} names no container`);
  const client = new ContainerClient(
    `${source.protocol}//${source.host}/${segments.slice(0, depth).join('/')}?${sas}`,
    new AnonymousCredential(),
  );
  const rest = segments.slice(depth);
  const blobPrefix = rest.join('/');
  try {
    for await (const blob of client.listBlobsFlat(blobPrefix === '' ? {} : { prefix: blobPrefix })) {
      if (!blob.name.endsWith('.jsonl') || !blobMayOverlap(blob.name, options)) continue;
      const download = await client.getBlobClient(blob.name).download();
      await readLines(download.readableStreamBody as Readable, filter);
    }
  } catch (error) {
    if (error instanceof RestError) {
      const hint =
        error.statusCode === 403 || error.statusCode === 401
          ? 'check the SAS token: it needs read and list permissions and must not be expired'
          : error.statusCode === 404
            ? 'check the container URL'
            : 'check that the storage is reachable';
      throw new Error(
        `${source.origin}${source.pathname}: ${error.code ?? error.statusCode ?? 'error'}; ${hint}`,
      );
    }
    throw error;
  }
}

function parseTime(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const time = Date.parse(raw);
  if (Number.isNaN(time))
    throw new LogsUsageError(
      `${flag} ${JSON.stringify(raw)} is not a date; use ISO 8601, e.g. 2026-12-01T00:00:00Z`,
    );
  return time;
}

/** The options of `fnolctl logs export`. */
export const LOGS_OPTIONS = {
  from: { type: 'string' },
  out: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  model: { type: 'string' },
  'model-version': { type: 'string' },
  'sas-token-file': { type: 'string' },
} as const;

/** `fnolctl logs ...` on its own arguments: returns the exit code (0 done, 1 error, 2 bad usage). */
export async function logsMain(argv: string[], log: (line: string) => void = console.error): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...LOGS_OPTIONS, help: { type: 'boolean', short: 'h', default: false } },
    });
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n${LOGS_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(LOGS_USAGE);
    return 0;
  }
  return logsCommand(parsed.values, parsed.positionals, log);
}

/** `fnolctl logs export` with its options parsed (fnolctl's command table calls this). */
export async function logsCommand(
  values: { [K in keyof typeof LOGS_OPTIONS]?: string | undefined },
  positionals: string[],
  log: (line: string) => void,
): Promise<number> {
  try {
    if (positionals[0] !== 'export' || positionals.length !== 1) {
      throw new LogsUsageError(
        `unknown logs command ${JSON.stringify(positionals.join(' '))}; use logs export`,
      );
    }
    if (values.from === undefined || values.out === undefined)
      throw new LogsUsageError('logs export needs --from and --out');
    const options: ExportOptions = {
      since: parseTime(values.since, '--since'),
      until: parseTime(values.until, '--until'),
      model: values.model,
      version: values['model-version'],
    };
    if (options.since !== undefined && options.until !== undefined && options.since >= options.until) {
      throw new LogsUsageError('--since must be before --until');
    }
    const filter = new WindowFilter(options);
    if (/^https?:\/\//.test(values.from)) {
      const source = new URL(values.from);
      if (source.search !== '' || source.username !== '') {
        throw new LogsUsageError(
          '--from must not carry a query string or credentials; put the SAS token in --sas-token-file',
        );
      }
      let sas = process.env.FNOL_PAYLOAD_LOG_SAS_TOKEN?.trim();
      if (values['sas-token-file'] !== undefined) sas = readFileSync(values['sas-token-file'], 'utf8').trim();
      if (!sas)
        throw new LogsUsageError(
          'a container needs a SAS token: --sas-token-file FILE or FNOL_PAYLOAD_LOG_SAS_TOKEN',
        );
      await readContainer(source, sas.replace(/^\?/, ''), filter, options);
    } else {
      const files = statSync(values.from).isDirectory()
        ? readdirSync(values.from)
            .filter((f) => /\.(jsonl|log|json)$/.test(f))
            .sort()
            .map((f) => join(values.from as string, f))
        : [values.from];
      for (const file of files) await readLines(createReadStream(file), filter);
    }
    const { summary } = filter;
    if (summary.models.length > 1) {
      throw new Error(
        `the window holds records of several models (${summary.models.join(', ')}); choose one with --model`,
      );
    }
    const csv = toCsv(filter.kept);
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(values.out as string);
      out.on('error', reject);
      out.end(csv, resolve);
    });
    log(
      `wrote ${summary.rows} records of ${summary.requests} requests to ${values.out}` +
        (summary.skippedLines > 0
          ? ` (${summary.skippedLines} lines that are not payload-log records skipped)`
          : ''),
    );
    return 0;
  } catch (error) {
    if (error instanceof LogsUsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`error: ${(error as Error).message}\n${LOGS_USAGE}`);
      return 2;
    }
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
}
