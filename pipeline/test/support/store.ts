// The local model store (Azurite) for tests: started through the project's
// script if it is not running, and stopped when the mocha run ends if this
// process started it.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const PID_FILE = path.join(ROOT, '.azurite', 'azurite.pid');

let started: Promise<Record<string, string>> | undefined;

function running(): boolean {
  if (!existsSync(PID_FILE)) return false;
  try {
    process.kill(Number(readFileSync(PID_FILE, 'utf8').trim()), 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the store if needed; resolves to the environment that connects to it. */
export function useStore(): Promise<Record<string, string>> {
  started ??= (async () => {
    const wasRunning = running();
    await run('bash', [path.join(ROOT, 'store/up.sh')]);
    if (!wasRunning && !process.env.FNOL_STORE_KEEP) {
      process.once('exit', () => {
        execFileSync('bash', [path.join(ROOT, 'store/down.sh')], { stdio: 'ignore' });
      });
    }
    const connection = (await run('bash', [path.join(ROOT, 'store/connection-string.sh')])).stdout.trim();
    return { AZURE_STORAGE_CONNECTION_STRING: connection };
  })();
  return started;
}
