// The local model store (Azurite) for tests: started through the project's
// script if it is not running, and stopped when the mocha run ends if this
// process started it: that store only (its address), never another one, such
// as the demo's on the node's bridge.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const HOST = process.env.FNOL_STORE_HOST ?? '127.0.0.1';
const PORT = process.env.FNOL_STORE_PORT ?? '10000';
/** store/up.sh's pid file for this address (store/lib.sh). */
const PID_FILE = path.join(ROOT, '.azurite', `${HOST}-${PORT}`, 'azurite.pid');
const STORE_ENV = { ...process.env, FNOL_STORE_HOST: HOST, FNOL_STORE_PORT: PORT };

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
    await run('bash', [path.join(ROOT, 'store/up.sh')], { env: STORE_ENV });
    if (!wasRunning && !process.env.FNOL_STORE_KEEP) {
      process.once('exit', () => {
        execFileSync('bash', [path.join(ROOT, 'store/down.sh')], { stdio: 'ignore', env: STORE_ENV });
      });
    }
    const connection = (
      await run('bash', [path.join(ROOT, 'store/connection-string.sh')], { env: STORE_ENV })
    ).stdout.trim();
    return { AZURE_STORAGE_CONNECTION_STRING: connection };
  })();
  return started;
}
