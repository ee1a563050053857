// Configuration checks and model fetching: files, blobs over real HTTP on
// loopback with transient failures, SAS tokens, sha256 and size limits.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { ConfigError, parseConfig, type ModelSourceConfig } from '../src/config';
import { fetchModel, ModelSourceError } from '../src/model-source';
import { startScorer } from '../src/server';
import { parseAllowedHosts } from '@fnol/model-fetch';
import { freePort } from '../../test/support/net';
import { call, fnolModel } from './support';

const noFile = (path: string): string => {
  throw Object.assign(new Error(`no ${path}`), { code: 'ENOENT' });
};

function configProblems(env: Record<string, string>): string[] {
  try {
    parseConfig(env, noFile);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.problems];
  }
  return [];
}

class Recorder {
  readonly lines: string[] = [];
  info(obj: object, msg: string) {
    this.lines.push(`${msg} ${JSON.stringify(obj)}`);
  }
  warn(obj: object, msg: string) {
    this.lines.push(`${msg} ${JSON.stringify(obj)}`);
  }
}

/** A blob server on loopback: answers `failures` requests with 503 first. */
async function blobServer(
  files: Record<string, Buffer>,
  handler: (req: IncomingMessage, res: ServerResponse, attempt: number) => boolean = () => false,
): Promise<{ server: Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (handler(req, res, requests.length)) return;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const body = files[path];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function source(uri: string, overrides: Partial<ModelSourceConfig> = {}): ModelSourceConfig {
  return {
    uri: new URL(uri),
    sha256: undefined,
    name: undefined,
    version: undefined,
    sasToken: undefined,
    maxBytes: 64 * 1024 * 1024,
    fetchAttempts: 5,
    fetchTimeoutMs: 10_000,
    retryBaseDelayMs: 100,
    // The blob servers of these tests listen on loopback over plain http.
    policy: { allowedHosts: parseAllowedHosts('127.0.0.1'), localMode: true },
    ...overrides,
  };
}

describe('scorer configuration', () => {
  it('parses a complete environment into a typed object with defaults', () => {
    const config = parseConfig(
      {
        MODEL_URI: 'https://acct.blob.core.windows.net/models/fnol/1.0.0/fnol-1.0.0.onnx',
        MODEL_SHA256: 'A'.repeat(64),
        MODEL_SAS_TOKEN_FILE: '/secret',
        MODEL_NAME: 'fnol',
      },
      () => '?sv=2024-01-01&sr=b&sig=abc%2Fdef\n',
    );
    assert.equal(config.port, 8080);
    assert.equal(config.model.sha256, 'a'.repeat(64));
    assert.equal(config.model.sasToken, 'sv=2024-01-01&sr=b&sig=abc%2Fdef');
    assert.equal(config.model.name, 'fnol');
    assert.equal(config.shutdownGraceSeconds, 25);
    assert.ok(Object.isFrozen(config));
  });

  it('names every bad variable and says what to do', () => {
    const problems = configProblems({
      MODEL_URI: 'https://acct.blob.core.windows.net/m.onnx?sv=1&sig=leaked',
      PORT: 'eighty',
      LOG_LEVEL: 'loud',
      MAX_BATCH_RECORDS: '0',
      API_KEYS_FILE: '/missing/keys',
    });
    const text = problems.join('\n');
    assert.match(
      text,
      /MODEL_URI carries a SAS signature \(sig=\); remove the query string and put the token in MODEL_SAS_TOKEN_FILE/,
    );
    assert.match(text, /PORT="eighty" is not an integer between 0 and 65535/);
    assert.match(text, /LOG_LEVEL="loud" is not one of/);
    assert.match(text, /MAX_BATCH_RECORDS="0"/);
    assert.match(text, /API_KEYS_FILE=\/missing\/keys cannot be read \(ENOENT\)/);
    assert.doesNotMatch(text, /leaked/);
  });

  it('requires MODEL_URI, and MODEL_SHA256 for a remote one', () => {
    assert.match(configProblems({}).join(), /MODEL_URI is not set/);
    assert.match(
      configProblems({ MODEL_URI: 'http://blob/m.onnx' }).join(),
      /MODEL_SHA256 is required for a remote MODEL_URI/,
    );
    assert.match(configProblems({ MODEL_URI: 's3://bucket/m.onnx' }).join(), /scheme s3: is not supported/);
    assert.match(
      configProblems({ MODEL_URI: 'file:///m.onnx', MODEL_SHA256: 'abc' }).join(),
      /64 hexadecimal digits/,
    );
    assert.deepEqual(configProblems({ MODEL_URI: 'file:///m.onnx' }), []);
  });

  it('downloads only from MODEL_ALLOWED_HOSTS, over https unless MODEL_LOCAL_MODE=true', () => {
    const sha = { MODEL_SHA256: 'c'.repeat(64) };
    // Default: Azure Blob Storage only.
    assert.deepEqual(
      configProblems({ ...sha, MODEL_URI: 'https://acct.blob.core.windows.net/m/m.onnx' }),
      [],
    );
    assert.match(
      configProblems({ ...sha, MODEL_URI: 'https://169.254.169.254/metadata/m.onnx' }).join(),
      /MODEL_URI refused: .*host 169\.254\.169\.254 is not on the model host allow-list \(\*\.blob\.core\.windows\.net\)/,
    );
    assert.match(
      configProblems({ ...sha, MODEL_URI: 'http://acct.blob.core.windows.net/m/m.onnx' }).join(),
      /MODEL_URI refused: .*http: is not allowed; use https:\/\/ \(plain http is allowed only in local mode/,
    );
    const local = {
      ...sha,
      MODEL_LOCAL_MODE: 'true',
      MODEL_ALLOWED_HOSTS: '10.250.0.1,*.blob.core.windows.net',
    };
    assert.deepEqual(
      configProblems({ ...local, MODEL_URI: 'http://10.250.0.1:10000/devstoreaccount1/m.onnx' }),
      [],
    );
    assert.match(
      configProblems({ ...local, MODEL_URI: 'http://127.0.0.1/m.onnx' }).join(),
      /not on the model host/,
    );
    assert.match(
      configProblems({ ...sha, MODEL_URI: 'file:///m.onnx', MODEL_ALLOWED_HOSTS: '*' }).join(),
      /"\*"/,
    );
    assert.match(
      configProblems({ MODEL_URI: 'file:///m.onnx', MODEL_LOCAL_MODE: 'maybe' }).join(),
      /MODEL_LOCAL_MODE/,
    );
  });

  it('rejects a token file without a signature, without echoing it', () => {
    const problems: string[] = [];
    try {
      parseConfig(
        { MODEL_URI: 'https://a/m.onnx', MODEL_SHA256: 'b'.repeat(64), MODEL_SAS_TOKEN_FILE: '/t' },
        () => 'password123',
      );
    } catch (error) {
      problems.push(...(error as ConfigError).problems);
    }
    assert.match(problems.join(), /MODEL_SAS_TOKEN_FILE does not hold a SAS token/);
    assert.doesNotMatch(problems.join(), /password123/);
  });
});

describe('scorer model fetching', function () {
  let bytes: Buffer;
  let sha256: string;
  before(() => {
    bytes = readFileSync(fnolModel());
    sha256 = createHash('sha256').update(bytes).digest('hex');
  });

  it('reads a file:// model and the model card beside it, checking the sha256', async () => {
    const fetched = await fetchModel(source(pathToFileURL(fnolModel()).href, { sha256 }), {
      logger: new Recorder(),
    });
    assert.equal(fetched.sha256, sha256);
    assert.equal(fetched.bytes.length, bytes.length);
    assert.equal((fetched.card as { name: string }).name, 'fnol');
  });

  it('refuses a model whose sha256 is not MODEL_SHA256, saying both', async () => {
    const wrong = 'f'.repeat(64);
    await assert.rejects(
      fetchModel(source(pathToFileURL(fnolModel()).href, { sha256: wrong }), { logger: new Recorder() }),
      (e: Error) => {
        assert.ok(e instanceof ModelSourceError);
        assert.match(e.message, new RegExp(`has sha256 ${sha256} but MODEL_SHA256 is ${wrong}`));
        return true;
      },
    );
  });

  it('downloads over HTTP with the SAS token, retrying transient 503s with growing back-off', async () => {
    const blob = await blobServer({ '/models/fnol.onnx': bytes }, (req, res, attempt) => {
      if (req.url?.includes('.onnx') && attempt <= 3) {
        res.writeHead(503).end('busy');
        return true;
      }
      return false;
    });
    const delays: number[] = [];
    const logger = new Recorder();
    try {
      const fetched = await fetchModel(
        source(`${blob.url}/models/fnol.onnx`, { sha256, sasToken: 'sv=2024&sr=b&sig=s3cr3t%2B' }),
        { logger, sleep: async (ms) => void delays.push(ms), random: () => 1 },
      );
      assert.equal(fetched.sha256, sha256);
      assert.deepEqual(delays, [100, 200, 400]);
      assert.equal(blob.requests.filter((r) => r.includes('.onnx')).length, 4);
      assert.ok(
        blob.requests.every((r) => r.includes('sig=s3cr3t%2B')),
        'token sent on every request',
      );
      assert.ok(
        blob.requests.some((r) => r.startsWith('/models/fnol.model-card.json?')),
        'card looked up beside the model',
      );
      assert.doesNotMatch(logger.lines.join('\n'), /s3cr3t/);
      assert.match(logger.lines.join('\n'), /download failed, retrying .*"reason":"HTTP 503"/);
    } finally {
      blob.server.close();
    }
  });

  it('gives up after MODEL_FETCH_ATTEMPTS transient failures, saying so', async () => {
    const blob = await blobServer({}, (_req, res) => {
      res.writeHead(503).end();
      return true;
    });
    try {
      await assert.rejects(
        fetchModel(source(`${blob.url}/m.onnx`, { sha256, fetchAttempts: 3 }), {
          logger: new Recorder(),
          sleep: async () => {},
        }),
        /HTTP 503, still failing after 3 attempts/,
      );
      assert.equal(blob.requests.length, 3);
    } finally {
      blob.server.close();
    }
  });

  it('does not retry a refused token, and says to check it', async () => {
    const blob = await blobServer({}, (_req, res) => {
      res.writeHead(403).end();
      return true;
    });
    try {
      await assert.rejects(
        fetchModel(source(`${blob.url}/m.onnx`, { sha256, sasToken: 'sig=x' }), {
          logger: new Recorder(),
          sleep: async () => {},
        }),
        /HTTP 403; check the SAS token/,
      );
      assert.equal(blob.requests.length, 1);
    } finally {
      blob.server.close();
    }
  });

  it('retries a download cut short, and caps the size', async () => {
    let served = 0;
    const blob = await blobServer({ '/m.onnx': bytes }, (req, res) => {
      if (req.url?.startsWith('/m.onnx') && served++ === 0) {
        res.writeHead(200, { 'content-length': bytes.length });
        res.write(bytes.subarray(0, 1000));
        res.destroy();
        return true;
      }
      return false;
    });
    try {
      const fetched = await fetchModel(source(`${blob.url}/m.onnx`, { sha256 }), {
        logger: new Recorder(),
        sleep: async () => {},
      });
      assert.equal(fetched.sha256, sha256);
      await assert.rejects(
        fetchModel(source(`${blob.url}/m.onnx`, { sha256, maxBytes: 100_000 }), { logger: new Recorder() }),
        /too large: .*over the MODEL_MAX_BYTES limit of 100000; raise MODEL_MAX_BYTES if it is right/,
      );
      await assert.rejects(
        fetchModel(source(`${blob.url}/absent.onnx`, { sha256 }), { logger: new Recorder() }),
        /model file not found at http:\/\/127.0.0.1:\d+\/absent.onnx; check MODEL_URI/,
      );
    } finally {
      blob.server.close();
    }
  });
});

describe('scorer model download deadline', function () {
  this.timeout(15_000);

  it('gives up on a body that trickles in at MODEL_FETCH_TIMEOUT_SECONDS, not ready meanwhile, with a clear log line', async () => {
    const bytes = readFileSync(fnolModel());
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let trickle: NodeJS.Timeout | undefined;
    const blob = await blobServer({}, (_req, res) => {
      res.writeHead(200, { 'content-length': bytes.length });
      trickle = setInterval(() => res.write(bytes.subarray(0, 1)), 100);
      res.on('close', () => clearInterval(trickle));
      return true;
    });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const port = await freePort();
    try {
      const config = parseConfig(
        {
          MODEL_URI: `${blob.url}/models/slow.onnx`,
          MODEL_SHA256: sha256,
          MODEL_SAS_TOKEN: 'sv=2024&sig=sl0w-s3cret',
          MODEL_LOCAL_MODE: 'true',
          MODEL_ALLOWED_HOSTS: '127.0.0.1',
          MODEL_FETCH_TIMEOUT_SECONDS: '2',
          PORT: String(port),
          HOST: '127.0.0.1',
        },
        () => '',
      );
      const starting = startScorer(config, { logger });
      const outcome = starting.then(
        () => 'started',
        (error: Error) => error,
      );
      // While the body trickles in, the scorer is alive and says it is not ready.
      const readyz = await call(`http://127.0.0.1:${port}`, '/readyz');
      assert.equal(readyz.status, 503);
      assert.match(readyz.text, /model is loading/);

      const error = await outcome;
      assert.ok(error instanceof Error, 'startScorer must fail, not hang or succeed');
      assert.match(error.message, /deadline exceeded: no complete download within 2 s/);
      assert.equal(blob.requests.length, 1, 'the deadline covers the whole fetch: no further attempt');
      const log = lines.join('');
      assert.match(log, /deadline exceeded/);
      assert.doesNotMatch(log + error.message, /sl0w-s3cret/);
    } finally {
      clearInterval(trickle);
      blob.server.closeAllConnections();
      blob.server.close();
    }
  });
});
