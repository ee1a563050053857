// API keys are reloaded when the mounted file changes, without a restart: written
// in place, or swapped the way the kubelet updates a Secret volume (a new
// timestamped directory, then the ..data symlink renamed over the old one). A
// file that turns empty or unreadable keeps the keys loaded before. Keys never
// appear in logs.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { parseConfig } from '../../src/config';
import { startScorer, type RunningScorer } from '../../src/server';
import { SMOKE_ROWS, call, fnolModel } from '../support';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('scorer API key rotation', function () {
  this.timeout(60_000);
  const lines: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    }),
  );
  const body = { data: [SMOKE_ROWS[0]] };
  const status = async (scorer: RunningScorer, key: string) =>
    (await call(scorer.url, '/score', { body, headers: { 'x-api-key': key } })).status;
  /** Waits until `key` gets `want`, at most `ms`. */
  const until = async (scorer: RunningScorer, key: string, want: number, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await status(scorer, key)) === want) return;
      await sleep(100);
    }
    assert.fail(`key ${key.slice(0, 6)}... did not get ${want} within ${ms} ms`);
  };
  const start = async (keysFile: string) => {
    const config = parseConfig(
      {
        MODEL_URI: pathToFileURL(fnolModel()).href,
        API_KEYS_FILE: keysFile,
        API_KEYS_RELOAD_SECONDS: '1',
        PORT: '0',
        HOST: '127.0.0.1',
      },
      (path) => readFileSync(path, 'utf8'),
    );
    return startScorer(config, { logger });
  };

  it('reloads a key file rewritten in place; an empty file keeps the keys loaded before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scorer-keys-'));
    const file = join(dir, 'keys');
    writeFileSync(file, 'key-old-1111\n');
    const scorer = await start(file);
    try {
      assert.equal(await status(scorer, 'key-old-1111'), 200);
      assert.equal(await status(scorer, 'key-new-2222'), 401);
      // Rotation step 1: both keys.
      writeFileSync(file, 'key-old-1111\nkey-new-2222\n');
      await until(scorer, 'key-new-2222', 200);
      assert.equal(await status(scorer, 'key-old-1111'), 200);
      // Rotation step 2: the old key removed.
      writeFileSync(file, '# rotated\nkey-new-2222\n');
      await until(scorer, 'key-old-1111', 401);
      assert.equal(await status(scorer, 'key-new-2222'), 200);
      // A file without keys (or gone) does not lock every client out.
      writeFileSync(file, '\n');
      await sleep(2500);
      assert.equal(await status(scorer, 'key-new-2222'), 200);
      rmSync(file);
      await sleep(2500);
      assert.equal(await status(scorer, 'key-new-2222'), 200);
      writeFileSync(file, 'key-third-3333\n');
      await until(scorer, 'key-third-3333', 200);
      assert.equal(await status(scorer, 'key-new-2222'), 401);
    } finally {
      await scorer.shutdown();
    }
    const log = lines.join('\n');
    assert.match(log, /API keys reloaded/);
    assert.match(log, /holds no key; keeping the keys loaded before/);
    assert.match(log, /cannot be read \(ENOENT\); keeping the keys loaded before/);
    assert.doesNotMatch(log, /key-old-1111|key-new-2222|key-third-3333/);
  });

  it('reloads a Secret volume updated as the kubelet does (..data symlink swap)', async () => {
    const mount = mkdtempSync(join(tmpdir(), 'scorer-secret-'));
    const version = (name: string, keys: string) => {
      mkdirSync(join(mount, name));
      writeFileSync(join(mount, name, 'keys'), keys);
    };
    version('..2025_01_01_00_00_00.1', 'key-first-aaaa\n');
    symlinkSync('..2025_01_01_00_00_00.1', join(mount, '..data'));
    symlinkSync('..data/keys', join(mount, 'keys'));
    const scorer = await start(join(mount, 'keys'));
    try {
      assert.equal(await status(scorer, 'key-first-aaaa'), 200);
      version('..2025_01_02_00_00_00.2', 'key-second-bbbb\n');
      symlinkSync('..2025_01_02_00_00_00.2', join(mount, '..data_tmp'));
      renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
      rmSync(join(mount, '..2025_01_01_00_00_00.1'), { recursive: true });
      await until(scorer, 'key-second-bbbb', 200);
      assert.equal(await status(scorer, 'key-first-aaaa'), 401);
    } finally {
      await scorer.shutdown();
    }
  });
});
