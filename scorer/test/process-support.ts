// The scorer's real entry point (scorer/src/main.ts) as a child process, for the
// suites that need a whole process: signals, memory, exit codes.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT, call } from './support';

export interface Running {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Starts scorer/src/main.ts with `env`; `npm` runs it through `npm run scorer`. */
export function launch(env: Record<string, string>, via: 'node' | 'npm' = 'node'): Running {
  const [command, args] =
    via === 'npm'
      ? ['npm', ['run', '-s', 'scorer']]
      : [process.execPath, ['--require', 'tsx/cjs', 'scorer/src/main.ts']];
  const child = spawn(command as string, args as string[], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    stdout.push(...lines);
  });
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { child, stdout, stderr, exit };
}

export async function waitReady(url: string, running: Running, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (running.child.exitCode !== null) throw new Error(`scorer exited: ${running.stderr.join('')}`);
    try {
      if ((await call(url, '/readyz')).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`scorer not ready after ${timeoutMs} ms: ${running.stdout.slice(-5).join('\n')}`);
}

/** Resident memory of a process, in bytes (from /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return kib ? Number(kib[1]) * 1024 : 0;
}
