// The model store: Azure Blob Storage (Azurite locally). Versions are immutable:
// a blob, once written, is never overwritten with different content.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlobServiceClient, RestError, type ContainerClient } from '@azure/storage-blob';

export type StoreEnv = Record<string, string | undefined>;

/** Where the store is, without its credentials (safe to print). */
export interface StoreConnection {
  client: BlobServiceClient;
  /** Account URL without any query string. */
  accountUrl: string;
}

/**
 * Connects from the environment: AZURE_STORAGE_CONNECTION_STRING, or
 * AZURE_STORAGE_ACCOUNT_URL with a SAS token from AZURE_STORAGE_SAS_TOKEN or
 * the file named by AZURE_STORAGE_SAS_FILE. Errors never repeat a credential.
 */
export function connectFromEnv(env: StoreEnv = process.env): StoreConnection {
  const connectionString = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (connectionString) {
    let client: BlobServiceClient;
    try {
      client = BlobServiceClient.fromConnectionString(connectionString);
    } catch {
      throw new Error(
        'AZURE_STORAGE_CONNECTION_STRING is not a valid storage connection string (value not shown); ' +
          'check it has AccountName, AccountKey or SharedAccessSignature, and BlobEndpoint for Azurite',
      );
    }
    return { client, accountUrl: stripQuery(client.url) };
  }
  const accountUrl = env.AZURE_STORAGE_ACCOUNT_URL?.trim();
  if (!accountUrl) {
    throw new Error(
      'no model store configured: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with ' +
        'AZURE_STORAGE_SAS_FILE (a file holding a SAS token) or AZURE_STORAGE_SAS_TOKEN; ' +
        'locally: npm run store:up and export AZURE_STORAGE_CONNECTION_STRING="$(bash store/connection-string.sh)"',
    );
  }
  let url: URL;
  try {
    url = new URL(accountUrl);
  } catch {
    throw new Error(`AZURE_STORAGE_ACCOUNT_URL is not a URL: "${stripQuery(accountUrl)}"`);
  }
  if (url.search) {
    throw new Error(
      'AZURE_STORAGE_ACCOUNT_URL must not carry a query string; put the SAS token in AZURE_STORAGE_SAS_FILE',
    );
  }
  let sas = env.AZURE_STORAGE_SAS_TOKEN?.trim();
  if (env.AZURE_STORAGE_SAS_FILE) {
    try {
      sas = readFileSync(env.AZURE_STORAGE_SAS_FILE, 'utf8').trim();
    } catch (err) {
      throw new Error(
        `cannot read AZURE_STORAGE_SAS_FILE ${env.AZURE_STORAGE_SAS_FILE}: ${(err as Error).message}`,
      );
    }
  }
  if (!sas) {
    throw new Error(
      'AZURE_STORAGE_ACCOUNT_URL is set but no SAS token: set AZURE_STORAGE_SAS_FILE or AZURE_STORAGE_SAS_TOKEN',
    );
  }
  const base = accountUrl.replace(/\/+$/, '');
  return {
    client: new BlobServiceClient(`${base}?${sas.replace(/^\?/, '')}`),
    accountUrl: base,
  };
}

export function stripQuery(url: string): string {
  const i = url.indexOf('?');
  return i < 0 ? url : url.slice(0, i);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export type PutOutcome = 'uploaded' | 'unchanged';

export class ImmutableVersionError extends Error {
  constructor(
    readonly blobName: string,
    readonly existingSha256: string,
    readonly newSha256: string,
  ) {
    super(
      `${blobName} is already published with different content (stored sha256 ${existingSha256}, ` +
        `new ${newSha256}); published versions are immutable: give the model a new version number`,
    );
  }
}

export async function ensureContainer(container: ContainerClient): Promise<void> {
  try {
    await container.createIfNotExists();
  } catch (err) {
    // A container-scoped SAS may neither create nor inspect the container; it
    // only needs to exist, and the upload reports ContainerNotFound if it does not.
    if (err instanceof RestError && err.statusCode === 403) return;
    throw err;
  }
}

/**
 * Writes a blob only if it does not exist. If it exists with the same sha256
 * the outcome is 'unchanged'; with other content an ImmutableVersionError.
 */
export async function putImmutable(
  container: ContainerClient,
  blobName: string,
  data: Buffer,
  contentType: string,
  onProgress?: (loaded: number) => void,
): Promise<PutOutcome> {
  const blob = container.getBlockBlobClient(blobName);
  const digest = sha256(data);
  try {
    await blob.uploadData(data, {
      conditions: { ifNoneMatch: '*' },
      blobHTTPHeaders: { blobContentType: contentType },
      metadata: { sha256: digest },
      onProgress: onProgress ? (p) => onProgress(p.loadedBytes) : undefined,
    });
    return 'uploaded';
  } catch (err) {
    if (!(err instanceof RestError) || (err.statusCode !== 409 && err.statusCode !== 412)) throw err;
  }
  // It exists: compare what is stored, byte for byte via its hash.
  const existing = await blob.downloadToBuffer();
  const existingDigest = sha256(existing);
  if (existingDigest !== digest) throw new ImmutableVersionError(blobName, existingDigest, digest);
  return 'unchanged';
}

/** A store error with what to check next; never includes request URLs (they may carry a SAS). */
export function describeStoreError(err: unknown): string {
  if (err instanceof RestError) {
    const code = err.code ?? 'error';
    const first = (err.message.split('\n')[0] ?? '').trim();
    const hint =
      err.statusCode === 403
        ? 'check the credentials: the SAS token needs read, add, create, write and list permissions and must not be expired'
        : err.statusCode === 404
          ? 'check the account URL and that the container exists'
          : 'check that the model store is reachable (locally: npm run store:up)';
    return `model store request failed (HTTP ${err.statusCode ?? '?'} ${code}: ${first}); ${hint}`;
  }
  return (err as Error).message;
}
