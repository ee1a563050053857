import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** Runs process-guard-child.ts in its own Node.js process; returns its exit code and stderr lines. */
function crash(mode: string): { status: number | null; lines: string[] } {
  const child = path.join(__dirname, 'process-guard-child.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, mode], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, lines: r.stderr.split('\n').filter((l) => l.trim() !== '') };
}

describe('operator process guard', function () {
  this.timeout(60_000);

  for (const [mode, kind] of [
    ['throw', 'uncaughtException'],
    ['reject', 'unhandledRejection'],
  ] as const) {
    it(`ends the process on an ${kind} with one structured log line and exit code 70`, () => {
      const { status, lines } = crash(mode);
      assert.equal(status, 70);
      assert.equal(lines.length, 1, `one line on stderr, got:\n${lines.join('\n')}`);
      const line = JSON.parse(lines[0]!) as { level: number; msg: string; err: { message: string } };
      assert.equal(line.level, 60);
      assert.equal(line.msg, `unexpected ${kind}; exiting`);
      assert.equal(line.err.message, `boom (${mode})`);
    });
  }
});
