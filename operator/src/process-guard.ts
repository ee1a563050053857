/**
 * The last line of defence of the operator process. Errors the operator expects
 * (API errors, failed model downloads, bad FnolModels) are caught where they
 * happen and end up in a status or a log line; an error that reaches this guard
 * is a bug. It is logged as one structured line and the process exits with code
 * 70 (EX_SOFTWARE), instead of Node's stack dump or a process left half working;
 * Kubernetes then restarts the pod, which re-campaigns with clean state.
 */

/** Exit code for an error nothing caught. */
export const UNEXPECTED_ERROR_EXIT_CODE = 70;

export function installProcessGuard(
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  let exiting = false;
  const fatal = (kind: string, error: unknown): void => {
    if (exiting) return;
    exiting = true;
    const e = error instanceof Error ? error : new Error(String(error));
    write(
      JSON.stringify({
        level: 60,
        time: new Date().toISOString(),
        app: 'fnol-operator',
        msg: `unexpected ${kind}; exiting`,
        err: { type: e.name, message: e.message, stack: e.stack },
      }),
    );
    exit(UNEXPECTED_ERROR_EXIT_CODE);
  };
  process.on('uncaughtException', (error) => fatal('uncaughtException', error));
  process.on('unhandledRejection', (reason) => fatal('unhandledRejection', reason));
}
