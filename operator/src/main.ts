/**
 * Entry point of the operator container: node dist/operator/src/main.js
 * (locally: npm run operator). Configuration from the environment, see
 * docs/operator.md.
 */
import { ConfigError } from './config';
import { startOperator } from './app';
import { installProcessGuard } from './process-guard';

installProcessGuard();

async function main(): Promise<void> {
  let stopping = false;
  const running = await startOperator({
    onLostLeadership: () => {
      // Crash-only: a fresh process re-campaigns with clean state.
      running.logger.error('exiting after losing leadership');
      process.exit(1);
    },
  });
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    running.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 25_000);
    force.unref();
    running
      .stop()
      .then(() => {
        running.logger.info('stopped');
        process.exit(0);
      })
      .catch((err: Error) => {
        running.logger.error({ err: err.message }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(JSON.stringify({ level: 'fatal', msg: `invalid configuration: ${err.message}` }));
  } else {
    console.error(
      JSON.stringify({ level: 'fatal', msg: `fnol-operator failed to start: ${(err as Error).message}` }),
    );
  }
  process.exit(1);
});
