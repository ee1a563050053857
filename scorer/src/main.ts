// Entry point of the scoring image: configuration from the environment, then
// startScorer; exits non-zero with a message naming the problem when it cannot serve.

import { readFileSync } from 'node:fs';
import pino from 'pino';
import { ConfigError, parseConfig } from './config';
import { describeUri } from './model-source';
import { startScorer } from './server';

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env, (path) => readFileSync(path, 'utf8'));
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`scorer: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({
    level: config.logLevel,
    base: { service: 'scorer' },
    redact: {
      paths: ['sasToken', '*.sasToken', 'headers.authorization', 'headers["x-api-key"]'],
      censor: '[redacted]',
    },
  });
  logger.info(
    {
      modelUri: describeUri(config.model.uri),
      sha256: config.model.sha256,
      name: config.model.name,
      version: config.model.version,
      sasTokenConfigured: config.model.sasToken !== undefined,
      workloadIdentity: config.model.identity !== undefined,
      oidcIssuer: config.oidc?.issuer,
      limits: config.limits,
      intraOpThreads: config.intraOpThreads,
    },
    'starting scorer',
  );
  if (!config.limits.overload.enabled) {
    logger.warn(
      'OVERLOAD_GUARD=off: no bound on requests in flight, body bytes, queued rows, request time or JSON nesting; for benchmarks only',
    );
  }
  let scorer: Awaited<ReturnType<typeof startScorer>> | undefined;
  const stop = (signal: string) => {
    logger.info({ signal }, 'signal received');
    if (scorer === undefined) process.exit(0); // still starting: nothing in flight
    void scorer.shutdown().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  try {
    scorer = await startScorer(config, { logger });
  } catch (error) {
    logger.fatal(
      { err: error instanceof Error ? { message: error.message } : String(error) },
      'cannot serve the model',
    );
    console.error(
      `scorer: cannot serve the model: ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exit(1);
  }
}

void main();
