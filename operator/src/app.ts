/**
 * Starts one operator process: configuration, logger, health server, operator.
 * main.ts calls it with the process environment; integration tests call it
 * in-process with their own kubeconfig.
 */
import type * as http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import pino, { Logger } from 'pino';
import { loadConfig, OperatorConfig } from './config';
import { portOf, startHealthServer } from './health';
import { OperatorMetrics } from './metrics';
import { FnolOperator } from './operator';

export interface RunningOperator {
  config: OperatorConfig;
  operator: FnolOperator;
  metrics: OperatorMetrics;
  healthPort: number;
  logger: Logger;
  stop: () => Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  kubeConfig?: KubeConfig;
  logger?: Logger;
  onLostLeadership?: () => void;
}

export async function startOperator(opts: StartOptions = {}): Promise<RunningOperator> {
  const config = loadConfig(opts.env ?? process.env);
  const logger =
    opts.logger ??
    pino({
      level: config.logLevel,
      base: { app: 'fnol-operator', identity: config.identity },
      timestamp: pino.stdTimeFunctions.isoTime,
    });
  const kubeConfig = opts.kubeConfig ?? new KubeConfig();
  if (!opts.kubeConfig) {
    try {
      kubeConfig.loadFromDefault();
    } catch (err) {
      throw new Error(
        `cannot load the Kubernetes credentials (${(err as Error).message}); set KUBECONFIG to a kubeconfig file or run in a pod with a ServiceAccount`,
      );
    }
  }
  const metrics = new OperatorMetrics();
  const operator = new FnolOperator({
    config,
    kubeConfig,
    logger,
    metrics,
    onLostLeadership: opts.onLostLeadership,
  });
  // A standby is ready (it serves /metrics and waits for the lease); a leader is
  // ready once its watches run.
  const server: http.Server = await startHealthServer(
    metrics,
    { ready: () => !operator.active || operator.synced },
    config.healthPort,
    config.healthHost,
  );
  await operator.start();
  logger.info(
    {
      healthPort: portOf(server),
      watchNamespace: config.watchNamespace || '(all)',
      verifyModelDigest: config.verifyModelDigest,
      defaultScorerImage: config.defaultScorerImage,
      leaderElection: config.leaderElection,
    },
    'fnol-operator started',
  );
  return {
    config,
    operator,
    metrics,
    healthPort: portOf(server),
    logger,
    stop: async () => {
      await operator.shutdown();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
    },
  };
}
