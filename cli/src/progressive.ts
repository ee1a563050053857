// The progressive promote: the candidate beside spec.model in spec.canary, first
// mirrored (compared, never answering), then answering growing shares of live
// requests, each step held and checked against the analysis thresholds; then
// moved into spec.model. On a breach or a timeout spec.canary is removed, once.
import { Annotations, sameModel, type FnolModel, type FnolModelSpecModelInput } from '@fnol/api';
import {
  canarySpec,
  canaryState,
  describeThresholds,
  earlyBreach,
  evaluate,
  formatFigures,
  modelPatch,
  progressLine,
  startDecision,
  type AnalysisThresholds,
  type Figure,
  type Step,
} from './canary';
import { KubeApiError, type FnolModelApi } from './fnolmodels';
import { PromotionError, waitForRollout, type PromoteOptions } from './promote';
import { previousModel, promotionRecord, rolloutState, type PromotionRecord } from './rollout';

/** Exit code: a step breached a threshold; spec.canary was removed, spec.model untouched. */
export const EXIT_ANALYSIS_FAILED = 5;
/** Exit code: the candidate was not ready (or its share not applied) in time; spec.canary was removed. */
export const EXIT_CANARY_TIMEOUT = 6;

export interface ProgressiveOptions extends PromoteOptions {
  steps: Step[];
  /** How long each step is held and observed once the operator reports it applied. */
  holdMs: number;
  thresholds: AnalysisThresholds;
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ATTEMPTS = 5;

type Build = (fm: FnolModel) => { body: Record<string, unknown> } | { skip: string };

/**
 * A merge patch with the object's resourceVersion as precondition. The
 * operator's status writes change the resourceVersion too, so a conflict is
 * expected now and then: re-read, let `build` decide again on what is there
 * now, and retry a few times.
 */
async function guardedPatch(
  api: FnolModelApi,
  fm: FnolModel,
  build: Build,
): Promise<{ patched: FnolModel } | { skipped: string }> {
  const { namespace, name } = fm.metadata as { namespace: string; name: string };
  let current = fm;
  for (let attempt = 1; ; attempt++) {
    const next = build(current);
    if ('skip' in next) return { skipped: next.skip };
    const metadata = {
      ...((next.body.metadata as Record<string, unknown> | undefined) ?? {}),
      resourceVersion: current.metadata.resourceVersion,
    };
    try {
      return { patched: await api.patch(namespace, name, { ...next.body, metadata }) };
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.statusCode !== 409 || attempt >= ATTEMPTS) throw err;
      current = await api.get(namespace, name);
    }
  }
}

/**
 * Runs the steps, then moves the candidate into spec.model and waits for the
 * rollout as promote does. Throws PromotionError with exit code 5 (analysis),
 * 6 (timeout), 3/4 (the final rollout failed and spec.model was restored / not
 * even that), or 1.
 */
export async function promoteProgressively(
  api: FnolModelApi,
  namespace: string,
  name: string,
  requested: FnolModelSpecModelInput,
  opts: ProgressiveOptions,
): Promise<FnolModel> {
  const ref = `FnolModel ${namespace}/${name}`;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? delay;
  const pollMs = opts.pollMs ?? 1000;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const id = opts.promotionId;
  const { steps } = opts;

  let fm = await api.get(namespace, name);
  const from = fm.spec.model;
  const previousBefore = previousModel(fm);
  const target: FnolModelSpecModelInput = { ...requested };
  if (!target.credentialsSecretRef && from.credentialsSecretRef && opts.keepCredentials !== false) {
    target.credentialsSecretRef = from.credentialsSecretRef;
  }
  const record = (state: PromotionRecord['state']): Record<string, string> =>
    id ? { [Annotations.promotion]: JSON.stringify({ id, from, to: target, state }) } : {};

  const decision = startDecision(fm, target, steps, id);
  if (decision.action === 'refuse') throw new PromotionError(decision.reason, decision.exitCode);
  if (decision.action === 'promoted') {
    opts.log(`${decision.reason}: waiting for its rollout`);
    // The model it replaced, when this run recorded it; otherwise nothing to restore.
    const rec = promotionRecord(fm);
    const replaced = rec && id && rec.id === id ? rec.from : undefined;
    return finishRollout(api, fm, target, replaced, previousModel(fm), opts);
  }
  if (!fm.spec.gateway && steps.some((s) => s.trafficPercent > 0)) {
    throw new PromotionError(
      `${ref} has no spec.gateway, so the candidate cannot answer a share of live requests (--canary); ` +
        'add spec.gateway.parentRef, or promote with --mirror only',
      1,
    );
  }

  opts.log(
    `${ref}: ${from.version} -> ${target.version} progressively: ${steps.map((s) => s.label).join(', ')}, ` +
      `each held ${Math.round(opts.holdMs / 1000)}s; analysis ${describeThresholds(opts.thresholds)}` +
      (id ? `; promotion ${id}` : ''),
  );

  /** The one place spec.canary is removed after a failure: the record says so in the same write. */
  const stop = async (exitCode: number, why: string, failed: Figure[] = []): Promise<never> => {
    opts.log(`${why}; removing spec.canary (${from.version} keeps serving every request)`);
    let outcome: string;
    try {
      const res = await guardedPatch(api, await api.get(namespace, name), (cur) => {
        const c = cur.spec.canary;
        if (!c || !sameModel(c.model, target)) {
          return { skip: `spec.canary no longer holds ${target.version}; left as it is` };
        }
        return {
          body: { metadata: { annotations: record('canary-stopped') }, spec: { canary: null } },
        };
      });
      outcome = 'patched' in res ? 'spec.canary removed' : res.skipped;
    } catch (err) {
      throw new PromotionError(
        `${why}; and removing spec.canary failed: ${(err as Error).message}. ` +
          `Remove it by hand: kubectl -n ${namespace} patch fnolmodel ${name} --type=json -p '[{"op":"remove","path":"/spec/canary"}]'`,
        4,
      );
    }
    const detail = failed.length > 0 ? `\n${formatFigures(failed).join('\n')}` : '';
    throw new PromotionError(
      `promotion of ${target.version} stopped: ${why}${detail}\n${outcome}; ${ref} still serves ${from.version}. ` +
        `Inspect with: npm run fnolctl -- status -n ${namespace} ${name}`,
      exitCode,
    );
  };

  let first = 0;
  let generation = fm.metadata.generation ?? 0;
  if (decision.action === 'resume') {
    opts.log(decision.reason);
    first = decision.step;
  }
  for (let i = first; i < steps.length; i++) {
    const step = steps[i]!;
    if (!(decision.action === 'resume' && i === first)) {
      const res = await guardedPatch(api, fm, (cur) => {
        if (i === 0) {
          if (cur.spec.canary)
            return { skip: `spec.canary was set meanwhile (${cur.spec.canary.model.version})` };
          if (!sameModel(cur.spec.model, from))
            return { skip: `spec.model changed meanwhile (${cur.spec.model.version})` };
          return {
            body: { metadata: { annotations: record('canary') }, spec: { canary: canarySpec(target, step) } },
          };
        }
        const c = cur.spec.canary;
        if (!c || !sameModel(c.model, target)) return { skip: 'spec.canary was changed by someone else' };
        return {
          body: {
            spec: { canary: { trafficPercent: step.trafficPercent, mirrorPercent: step.mirrorPercent } },
          },
        };
      });
      if ('skipped' in res) throw new PromotionError(`${ref}: ${res.skipped}; not touching it`, 1);
      fm = res.patched;
      generation = fm.metadata.generation ?? 0;
      opts.log(
        i === 0
          ? `spec.canary: ${target.version} with mirror ${step.mirrorPercent}%, traffic 0% (generation ${generation})`
          : `spec.canary.trafficPercent ${step.trafficPercent} (generation ${generation})`,
      );
    }

    try {
      // Wait until the operator reports the step applied.
      opts.log(
        `[${step.label}] waiting for CanaryReady with ${target.version} (timeout ${Math.round(opts.timeoutMs / 1000)}s)`,
      );
      const started = now();
      let last = '';
      let lastShown = -Infinity;
      for (;;) {
        fm = await api.get(namespace, name);
        const st = canaryState(fm, generation, target, step);
        if (st.state === 'lost') throw new PromotionError(`${ref}: ${st.summary}; not touching it`, 1);
        const elapsed = now() - started;
        if (st.summary !== last || elapsed - lastShown >= heartbeatMs) {
          opts.log(`  [${step.label}] ${Math.round(elapsed / 1000)}s ${st.summary}`);
          last = st.summary;
          lastShown = elapsed;
        }
        if (st.state === 'ready') break;
        if (elapsed >= opts.timeoutMs) {
          await stop(
            EXIT_CANARY_TIMEOUT,
            `[${step.label}] the candidate was not ready after ${Math.round(opts.timeoutMs / 1000)}s (${st.summary})`,
          );
        }
        await sleep(pollMs);
      }

      // Hold the step, watching the comparison.
      const holdStart = now();
      let seen = '';
      lastShown = -Infinity;
      for (;;) {
        const elapsed = now() - holdStart;
        const st = canaryState(fm, generation, target, step);
        if (st.state === 'lost') throw new PromotionError(`${ref}: ${st.summary}; not touching it`, 1);
        if (st.state !== 'ready') {
          await stop(
            EXIT_ANALYSIS_FAILED,
            `[${step.label}] the candidate stopped being ready (${st.summary})`,
          );
        }
        const c = fm.status?.canary?.comparison;
        const key = `${c?.updatedAt ?? ''}/${c?.requests ?? ''}/${c?.candidateErrors ?? ''}`;
        if (key !== seen || elapsed - lastShown >= heartbeatMs) {
          opts.log(progressLine(step, elapsed, opts.holdMs, c));
          seen = key;
          lastShown = elapsed;
        }
        const early = earlyBreach(c, opts.thresholds);
        if (early)
          await stop(
            EXIT_ANALYSIS_FAILED,
            `[${step.label}] analysis failed after ${Math.round(elapsed / 1000)}s`,
            [early],
          );
        if (elapsed >= opts.holdMs) break;
        await sleep(Math.min(pollMs, opts.holdMs - elapsed));
        fm = await api.get(namespace, name);
      }
      const verdict = evaluate(fm.status?.canary?.comparison, opts.thresholds);
      if (!verdict.pass) await stop(EXIT_ANALYSIS_FAILED, `[${step.label}] analysis failed`, verdict.failed);
      opts.log(`[${step.label}] analysis passed:`);
      for (const line of formatFigures(verdict.figures)) opts.log(line);
    } catch (err) {
      if (err instanceof PromotionError) throw err;
      // An unexpected failure (the API server unreachable, ...) still removes the candidate, once.
      await stop(1, `[${step.label}] ${(err as Error).message}`);
    }
  }

  // One write: the candidate into spec.model, spec.canary removed, the record and the rollback target.
  const last = steps[steps.length - 1]!;
  const res = await guardedPatch(api, fm, (cur) => {
    const c = cur.spec.canary;
    if (!c || !sameModel(c.model, target) || c.trafficPercent !== last.trafficPercent) {
      return { skip: 'spec.canary was changed by someone else' };
    }
    if (!sameModel(cur.spec.model, from))
      return { skip: `spec.model changed meanwhile (${cur.spec.model.version})` };
    return {
      body: {
        metadata: {
          annotations: {
            [Annotations.previousModel]: JSON.stringify(from),
            [Annotations.promotion]: id ? JSON.stringify({ id, from, to: target, state: 'applied' }) : null,
          },
        },
        spec: { model: modelPatch(target), canary: null },
      },
    };
  });
  if ('skipped' in res) throw new PromotionError(`${ref}: ${res.skipped}; not touching it`, 1);
  opts.log(
    `${ref}: spec.model ${from.version} -> ${target.version} and spec.canary removed in one patch (generation ${res.patched.metadata.generation ?? '?'})`,
  );
  try {
    return await finishRollout(api, res.patched, target, from, previousBefore, opts);
  } catch (err) {
    if (err instanceof PromotionError) throw err;
    throw new PromotionError(
      `${ref}: spec.model is ${target.version} now, but waiting for its rollout ended: ${(err as Error).message}; ` +
        `follow it with: npm run fnolctl -- status -n ${namespace} ${name}`,
      1,
    );
  }
}

/**
 * A sleep that rejects once `signal` is aborted (Ctrl-C, SIGTERM from a
 * cancelled job): during a step the rejection ends in the one removal of
 * spec.canary, like any other failure.
 */
export function abortableSleep(signal: AbortSignal): (ms: number) => Promise<void> {
  return (ms) =>
    new Promise((resolve, reject) => {
      const reason = () => (signal.reason instanceof Error ? signal.reason : new Error('interrupted'));
      if (signal.aborted) return reject(reason());
      const onAbort = () => {
        clearTimeout(timer);
        reject(reason());
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
}

/**
 * Waits for spec.model (`target`) to be Ready; if it is not, puts `replaced`
 * back (the one restore, recorded in the same write) and throws 3 or 4.
 */
async function finishRollout(
  api: FnolModelApi,
  fm: FnolModel,
  target: FnolModelSpecModelInput,
  replaced: FnolModelSpecModelInput | undefined,
  /** The rollback target to keep when `replaced` is restored (what it was before this promotion). */
  previousBefore: FnolModelSpecModelInput | undefined,
  opts: ProgressiveOptions,
): Promise<FnolModel> {
  const { namespace, name } = fm.metadata as { namespace: string; name: string };
  const ref = `FnolModel ${namespace}/${name}`;
  const generation = fm.metadata.generation ?? 0;
  if (rolloutState(fm, generation, target.version).state === 'ready') {
    opts.log(`${ref} serves ${target.version}: Ready`);
    return fm;
  }
  opts.log(
    `waiting for the operator to roll out ${target.version} (generation ${generation}, timeout ${Math.round(opts.timeoutMs / 1000)}s)`,
  );
  const outcome = await waitForRollout(api, namespace, name, generation, target.version, opts);
  if (outcome.state === 'ready') {
    opts.log(`${ref} serves ${target.version}: Ready`);
    return api.get(namespace, name);
  }
  const why = outcome.state === 'degraded' ? `Degraded: ${outcome.summary}` : outcome.summary;
  if (!replaced) throw new PromotionError(`${ref} did not become Ready with ${target.version}: ${why}`, 3);
  opts.log(`${target.version} failed (${why}); restoring the previous spec.model ${replaced.version}`);
  const id = opts.promotionId;
  const res = await guardedPatch(api, await api.get(namespace, name), (cur) =>
    sameModel(cur.spec.model, target)
      ? {
          body: {
            metadata: {
              annotations: {
                [Annotations.previousModel]: previousBefore ? JSON.stringify(previousBefore) : null,
                ...(id
                  ? {
                      [Annotations.promotion]: JSON.stringify({
                        id,
                        from: replaced,
                        to: target,
                        state: 'restored',
                      }),
                    }
                  : {}),
              },
            },
            spec: { model: modelPatch(replaced) },
          },
        }
      : { skip: `spec.model changed meanwhile (${cur.spec.model.version})` },
  );
  if ('skipped' in res)
    throw new PromotionError(`${ref}: ${target.version} failed (${why}); ${res.skipped}: not touching it`, 1);
  const back = await waitForRollout(
    api,
    namespace,
    name,
    res.patched.metadata.generation ?? 0,
    replaced.version,
    {
      ...opts,
      timeoutMs: opts.restoreTimeoutMs ?? opts.timeoutMs,
    },
  );
  if (back.state === 'ready') {
    throw new PromotionError(
      `promotion of ${target.version} failed (${why}); ${ref} was restored to ${replaced.version} and is Ready`,
      3,
    );
  }
  throw new PromotionError(
    `promotion of ${target.version} failed (${why}) and the restored ${replaced.version} is not Ready either (${back.summary})`,
    4,
  );
}
