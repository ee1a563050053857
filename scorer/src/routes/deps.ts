// What a route module receives: everything its handlers use, nothing global.

import type { Clock } from '../clock';
import type { RequestLimits } from '../config';
import type { Logger } from 'pino';
import type { ScorerMetrics } from '../metrics';
import type { Scoring } from '../scoring';
import type { ServingState } from '../serving-state';
import type { PayloadLog } from '../payload-log/payload-log';
import type { Shadow } from '../shadow/mirror';
import type { Route } from './table';

export interface RouteDeps {
  readonly state: ServingState;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: ScorerMetrics;
  readonly limits: RequestLimits;
  /** The served model's view, admission and batch runs shared by the scoring routes. */
  readonly scoring: Scoring;
  /** Shadow mirroring to a candidate version; undefined unless SHADOW_URL is set. */
  readonly shadow: Shadow | undefined;
  /** Payload logging; undefined unless PAYLOAD_LOG_SAMPLE_RATE is above 0. */
  readonly payloadLog?: PayloadLog | undefined;
}

/** A group of routes built from its dependencies, in the manner of a fastify plugin. */
export type RouteModule = (deps: RouteDeps) => readonly Route[];
