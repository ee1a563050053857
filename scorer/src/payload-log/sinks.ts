// Where payload-log lines go: stdout (JSON Lines, for the cluster's log
// collector) or Azure Blob Storage (JSON Lines, one Append Blob per pod per time
// window). Append Blobs, because each flush becomes durable and readable at
// once (a pod that dies loses at most one flush interval) without holding a
// window's blocks in memory or leaving them uncommitted until the window ends.

import type { Writable } from 'node:stream';
import { AnonymousCredential, ContainerClient, RestError } from '@azure/storage-blob';
import type { SinkConfig } from './config';

export interface Sink {
  /** Writes whole lines of the window starting at `windowStart` (epoch ms); rejects on failure. */
  write(text: string, windowStart: number): Promise<void>;
  /** What the logs may show: no token. */
  readonly description: string;
}

/** The most one append may carry (Append Blob limit: 4 MiB). */
export const MAX_APPEND_BYTES = 4 * 1024 * 1024;

/** Bytes stdout may hold unwritten before lines are dropped instead of queued. */
const MAX_STDOUT_BACKLOG = 8 * 1024 * 1024;

export class StdoutSink implements Sink {
  readonly description = 'stdout';
  constructor(private readonly stream: Writable = process.stdout) {}

  write(text: string): Promise<void> {
    if (this.stream.writableLength > MAX_STDOUT_BACKLOG) {
      return Promise.reject(new Error('stdout is not keeping up (its reader is slow or gone)'));
    }
    return new Promise((resolve, reject) => {
      // Wait for the stream to take it (backpressure): the writer holds the next lines meanwhile.
      this.stream.write(text, (error) => (error ? reject(error) : resolve()));
    });
  }
}

export interface BlobSinkOptions {
  readonly modelName: () => string;
  readonly modelVersion: () => string;
  readonly pod: string;
  readonly timeoutMs: number;
}

export class BlobSink implements Sink {
  readonly description: string;
  private readonly container: ContainerClient;
  /** Blobs created in this process (the current window's). */
  private readonly created = new Set<string>();

  constructor(
    config: Extract<SinkConfig, { kind: 'blob' }>,
    private readonly options: BlobSinkOptions,
  ) {
    this.description = config.containerUrl.href;
    this.container = new ContainerClient(
      `${config.containerUrl.href}?${config.sasToken}`,
      new AnonymousCredential(),
      {
        retryOptions: { maxTries: 2, tryTimeoutInMs: options.timeoutMs, retryDelayInMs: 200 },
        // The SDK's own request logging could show the SAS signature: off.
        userAgentOptions: { userAgentPrefix: 'fnol-scorer-payload-log' },
      },
    );
  }

  /** MODEL/VERSION/YYYY/MM/DD/HH/YYYYMMDDTHHMMSSZ-POD.jsonl: listed by time, one writer per blob. */
  blobName(windowStart: number): string {
    const iso = new Date(windowStart).toISOString(); // 2026-12-01T13:05:00.000Z
    const safe = (s: string) => s.replace(/[^\w.+-]/g, '_').slice(0, 128) || '_';
    const stamp = iso.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
    return `${safe(this.options.modelName())}/${safe(this.options.modelVersion())}/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}/${stamp}-${this.options.pod}.jsonl`;
  }

  async write(text: string, windowStart: number): Promise<void> {
    const name = this.blobName(windowStart);
    const blob = this.container.getAppendBlobClient(name);
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    try {
      if (!this.created.has(name)) {
        await blob.createIfNotExists({
          blobHTTPHeaders: { blobContentType: 'application/x-ndjson' },
          abortSignal: signal,
        });
        this.created.clear();
        this.created.add(name);
      }
      for (const chunk of chunks(text)) {
        await blob.appendBlock(chunk, chunk.length, { abortSignal: signal });
      }
    } catch (error) {
      // Created again next time: the blob (or its container) may have been deleted meanwhile.
      this.created.delete(name);
      throw new Error(explain(error, this.description));
    }
  }
}

/** The text in pieces of at most MAX_APPEND_BYTES, cut at line ends. */
function* chunks(text: string): Generator<Buffer> {
  const bytes = Buffer.from(text, 'utf8');
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(bytes.length, start + MAX_APPEND_BYTES);
    if (end < bytes.length) {
      const cut = bytes.lastIndexOf(0x0a, end - 1);
      if (cut < start) throw new Error(`a payload-log line is over ${MAX_APPEND_BYTES} bytes`);
      end = cut + 1;
    }
    yield bytes.subarray(start, end);
    start = end;
  }
}

/** The storage error with what to check; never the URL's query (the SAS token). */
function explain(error: unknown, container: string): string {
  if (error instanceof RestError) {
    const code = error.code ?? String(error.statusCode ?? 'no status');
    if (error.statusCode === 403 || error.statusCode === 401) {
      return `${container}: ${code}; check the SAS token (PAYLOAD_LOG_SAS_TOKEN_FILE): it may be expired or lack add, create and write permissions`;
    }
    if (error.statusCode === 404) {
      return `${container}: ${code}; create the container or fix PAYLOAD_LOG_CONTAINER_URL`;
    }
    return `${container}: ${code}${error.statusCode === undefined ? ` (${error.message.replace(/\?[^\s]*/g, '')})` : ''}; check that the storage is reachable`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `${container}: ${message.replace(/\?[^\s]*/g, '')}; check that the storage is reachable`;
}
