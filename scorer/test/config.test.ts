// The overload settings: defaults sized from the memory limit, overrides, and
// errors that name the variable.

import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { ConfigError, detectMemoryLimit, parseConfig } from '../src/config';

const MiB = 1024 * 1024;
const base = { MODEL_URI: 'file:///models/fnol.onnx' };
const noFile = (): string => {
  throw new Error('no file');
};

describe('scorer configuration: overload protection', () => {
  it('sizes the defaults from MEMORY_LIMIT_BYTES (a 1 GiB pod)', () => {
    const { limits } = parseConfig({ ...base, MEMORY_LIMIT_BYTES: String(1024 * MiB) }, noFile);
    assert.deepEqual(limits.overload, {
      enabled: true,
      memoryLimitBytes: 1024 * MiB,
      maxConcurrentRequests: 256,
      maxInflightBodyBytes: 128 * MiB,
      maxQueuedRows: 49_152,
      requestTimeoutMs: 10_000,
      maxJsonDepth: 32,
    });
  });

  it('gives a larger pod larger bounds, and a small one at least one full request', () => {
    const big = parseConfig({ ...base, MEMORY_LIMIT_BYTES: String(4096 * MiB) }, noFile).limits.overload;
    assert.equal(big.maxConcurrentRequests, 1024);
    assert.equal(big.maxInflightBodyBytes, 640 * MiB);
    const small = parseConfig(
      { ...base, MEMORY_LIMIT_BYTES: String(128 * MiB), MAX_BODY_BYTES: String(16 * MiB) },
      noFile,
    ).limits;
    assert.equal(small.overload.maxConcurrentRequests, 32);
    assert.equal(small.overload.maxInflightBodyBytes, small.maxBodyBytes);
    assert.equal(small.overload.maxQueuedRows, 5000);
  });

  it('takes overrides and OVERLOAD_GUARD=off', () => {
    const { overload } = parseConfig(
      {
        ...base,
        MAX_CONCURRENT_REQUESTS: '8',
        MAX_INFLIGHT_BODY_BYTES: String(64 * MiB),
        MAX_QUEUED_ROWS: '6000',
        REQUEST_TIMEOUT_MS: '2500',
        MAX_JSON_DEPTH: '12',
        OVERLOAD_GUARD: 'off',
      },
      noFile,
    ).limits;
    assert.equal(overload.enabled, false);
    assert.equal(overload.maxConcurrentRequests, 8);
    assert.equal(overload.maxInflightBodyBytes, 64 * MiB);
    assert.equal(overload.maxQueuedRows, 6000);
    assert.equal(overload.requestTimeoutMs, 2500);
    assert.equal(overload.maxJsonDepth, 12);
  });

  it('refuses settings that could never admit a full request, naming each variable', () => {
    assert.throws(
      () =>
        parseConfig(
          {
            ...base,
            MAX_BODY_BYTES: String(8 * MiB),
            MAX_INFLIGHT_BODY_BYTES: String(MiB),
            MAX_QUEUED_ROWS: '10',
            OVERLOAD_GUARD: 'maybe',
            API_KEYS_RELOAD_SECONDS: '0',
          },
          noFile,
        ),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const text = error.message;
        assert.match(text, /MAX_INFLIGHT_BODY_BYTES="1048576" is not an integer between 8388608 and/);
        assert.match(text, /MAX_QUEUED_ROWS="10" is not an integer between 5000 and/);
        assert.match(text, /OVERLOAD_GUARD="maybe" must be on or off/);
        assert.match(text, /API_KEYS_RELOAD_SECONDS="0" is not an integer between 1 and 3600/);
        return true;
      },
    );
  });

  it('reads the memory limit of the container, or the machine when there is none', () => {
    const limit = detectMemoryLimit();
    assert.ok(limit > 0 && limit <= totalmem());
  });
});
