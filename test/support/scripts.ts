/** Runs the project's own scripts from tests, their output shown in the test log. */
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Runs `bash <script> args...` (script relative to the repository root);
 * rejects naming the script, how it ended and where to look (`hint`).
 */
export function runScript(script: string, args: string[] = [], hint = 'its output above'): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(ROOT, script), ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${script} failed (${signal ?? `exit code ${code}`}); see ${hint}`)),
    );
  });
}
