// What POST /score and v2 inference share: the served model's view (codec,
// OpenAPI document, body limits), admission by the overload guard with its
// deadline, the body read within its limits, and the batch run.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestLimits } from './config';
import type { ErrorHandler } from './error-handler';
import { HttpError } from './http-errors';
import type { HistogramSeries, ScorerMetrics } from './metrics';
import { CancelledError, type Outputs } from './model-runtime';
import { buildOpenApi } from './openapi';
import { OverloadGuard, type Admission, type ExpiryListener } from './overload';
import { JsonLimitError, type JsonShapeLimits, type RequestBodies } from './request-body';
import type { ServedModel, ServingState } from './serving-state';
import type { ShadowTicket } from './shadow/mirror';
import { V2Codec } from './v2';

/** Per-model objects the handlers need, built once per served model. */
export interface ModelView {
  readonly model: ServedModel;
  readonly v2: V2Codec;
  readonly openapi: object;
  /** The prediction histogram's series of the primary output. */
  readonly primaryHistogram: HistogramSeries;
  /** Structure limits of a request body for this model (undefined: guard off). */
  readonly shape: JsonShapeLimits | undefined;
}

/** One scoring request on its way: its admission (bytes held, deadline) and progress. */
export interface ScoringRequest extends ExpiryListener {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly owner: Scoring;
  admission: Admission | undefined;
  bodyArrived: boolean;
  /** Drawn for shadow mirroring: its raw body is kept for the copy. */
  readonly shadow: ShadowTicket | undefined;
}

export interface ScoringDeps {
  readonly state: ServingState;
  readonly metrics: ScorerMetrics;
  readonly limits: RequestLimits;
  /** Whether API keys are required (the OpenAPI document says so). */
  readonly authenticated: boolean;
  readonly bodies: RequestBodies;
  readonly errors: ErrorHandler;
  /** Shadow mirroring, when SHADOW_URL is set: draws the requests to mirror. */
  readonly shadow?: { admit(req: IncomingMessage): ShadowTicket | undefined } | undefined;
}

/** Where a response keeps its admission, released when the response closes. */
const ADMISSION = Symbol('admission');
type AdmittedResponse = ServerResponse & { [ADMISSION]?: Admission };

/** One listener shared by every admitted response (no closure per request). */
function release(this: AdmittedResponse): void {
  this[ADMISSION]?.release();
}

/** A scoring request whose deadline passed: 503, or 408 while its body is still arriving. */
function expire(this: ScoringRequest): void {
  this.owner.expired(this);
}

export class Scoring {
  /** The overload guard; undefined when OVERLOAD_GUARD=off. */
  readonly guard: OverloadGuard | undefined;
  private view: ModelView | undefined;

  constructor(private readonly deps: ScoringDeps) {
    const { limits, metrics } = deps;
    this.guard = limits.overload.enabled ? new OverloadGuard(limits.overload, metrics.refused) : undefined;
  }

  /** The served model's view; 503 with the reason while there is none. */
  served(): ModelView {
    const { state, limits, metrics, authenticated } = this.deps;
    const model = state.model;
    if (model === undefined) {
      throw new HttpError(503, `not ready: ${state.notReadyReason}; retry shortly`, undefined, {
        'retry-after': '1',
      });
    }
    if (this.view?.model !== model) {
      const contract = model.runtime.contract;
      this.view = {
        model,
        v2: new V2Codec(contract, model.runtime.validators, limits.maxBatchRecords),
        openapi: buildOpenApi(contract, model.runtime.validators.schemas, authenticated),
        primaryHistogram: metrics.predictions.of(contract.primaryOutput),
        shape:
          this.guard === undefined
            ? undefined
            : {
                maxDepth: limits.overload.maxJsonDepth,
                // A v2 request nested as [N, 1] holds an array per value.
                maxContainers: limits.maxBatchRecords * (contract.features.length + 2) + 64,
                containersHint: `a request holds at most ${limits.maxBatchRecords} records (MAX_BATCH_RECORDS); split the request`,
              },
      };
      metrics.modelInfo.reset();
      metrics.modelInfo.labels(contract.name, contract.version, model.sha256 ?? '').set(1);
    }
    return this.view;
  }

  /**
   * The common part of POST /score and v2 infer once the key and the model are
   * checked: admission by the overload guard (with its deadline), then the body
   * within its limits.
   */
  async receive(req: IncomingMessage, res: ServerResponse, v: ModelView): Promise<[unknown, ScoringRequest]> {
    const { limits, bodies, shadow } = this.deps;
    const ticket = shadow?.admit(req);
    const scoring: ScoringRequest = {
      req,
      res,
      owner: this,
      admission: undefined,
      bodyArrived: false,
      shadow: ticket,
      expire,
    };
    const admission = this.guard?.admit(scoring);
    if (admission) {
      scoring.admission = admission;
      (res as AdmittedResponse)[ADMISSION] = admission;
      res.on('close', release);
    }
    let body: unknown;
    try {
      body = await bodies.read(req, res, {
        maxBytes: limits.maxBodyBytes,
        shape: v.shape,
        budget: admission,
        keep: ticket && ((raw) => (ticket.body = raw)),
      });
    } catch (error) {
      if (error instanceof JsonLimitError) this.guard?.countJsonRefusal();
      throw error;
    }
    scoring.bodyArrived = true;
    return [body, scoring];
  }

  /** Scores a batch unless the guard refuses its rows; undefined (answer nothing) once the deadline passed. */
  async runBatch(
    v: ModelView,
    scoring: ScoringRequest,
    n: number,
    run: (cancel: Admission | undefined) => Promise<Outputs>,
  ): Promise<Outputs | undefined> {
    this.guard?.admitRows(v.model.runtime.pendingRows, n);
    try {
      return await run(scoring.admission);
    } catch (error) {
      if (error instanceof CancelledError) return undefined;
      throw error;
    }
  }

  /** Feeds the primary output of a scored batch to the prediction histogram. */
  observe(outputs: Outputs, v: ModelView): void {
    const primary = outputs[v.model.runtime.contract.primaryOutput] as Float32Array;
    const { predictions } = this.deps.metrics;
    const series = v.primaryHistogram;
    for (let i = 0; i < primary.length; i++) predictions.observe(series, primary[i] as number);
  }

  /** The deadline of `scoring` passed (called by the guard). */
  expired(scoring: ScoringRequest): void {
    if (!scoring.res.headersSent && this.guard) {
      this.deps.errors.fail(scoring.req, scoring.res, this.guard.expired(scoring.bodyArrived), 'deadline');
    }
  }
}
