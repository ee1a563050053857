// promote and rollback: edit a FnolModel's spec.model, wait for the operator to
// roll it out, and restore the previous spec.model if it does not become Ready.
import { Annotations, sameModelSpec, type FnolModel, type FnolModelSpecModelInput } from '@fnol/api';
import { KubeApiError, type FnolModelApi } from './fnolmodels';
import {
  applyBody,
  previousModel,
  promotionRecord,
  rollbackDecision,
  rolloutState,
  type PromotionRecord,
  type RolloutState,
} from './rollout';

export interface WaitOptions {
  timeoutMs: number;
  pollMs?: number;
  /** Progress lines are repeated at least this often while nothing changes. */
  heartbeatMs?: number;
  log: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export class PromotionError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitForRollout(
  api: FnolModelApi,
  namespace: string,
  name: string,
  generation: number,
  version: string,
  opts: WaitOptions,
): Promise<RolloutState | { state: 'timeout'; summary: string }> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? delay;
  const started = now();
  let last = '';
  let lastShown = 0;
  let state: RolloutState = { state: 'waiting', summary: 'no status read yet' };
  for (;;) {
    const fm = await api.get(namespace, name);
    state = rolloutState(fm, generation, version);
    const elapsed = now() - started;
    if (state.summary !== last || elapsed - lastShown >= (opts.heartbeatMs ?? 15_000)) {
      opts.log(`  [${Math.round(elapsed / 1000)}s] ${state.summary}`);
      last = state.summary;
      lastShown = elapsed;
    }
    if (state.state !== 'waiting') return state;
    if (elapsed >= opts.timeoutMs) {
      return {
        state: 'timeout',
        summary: `not Ready after ${Math.round(opts.timeoutMs / 1000)}s: ${state.summary}`,
      };
    }
    await sleep(opts.pollMs ?? 1000);
  }
}

export interface PromoteOptions extends WaitOptions {
  /** Time allowed for the restored model to become Ready again after a failure. */
  restoreTimeoutMs?: number;
  /** Keep the current credentialsSecretRef when the target names none (default true). */
  keepCredentials?: boolean;
  /**
   * Names this promotion (a pipeline run): the promotion record is written with
   * spec.model, so `rollback --if-promoted-by` can undo exactly this promotion.
   */
  promotionId?: string;
}

/**
 * Applies `target` as spec.model and waits until the operator reports it Ready
 * (observedGeneration == generation, phase Ready, activeVersion == version).
 * On Degraded or timeout, re-applies the previous spec.model and throws.
 */
export async function promote(
  api: FnolModelApi,
  namespace: string,
  name: string,
  requested: FnolModelSpecModelInput,
  opts: PromoteOptions,
): Promise<FnolModel> {
  const ref = `FnolModel ${namespace}/${name}`;
  const fm = await api.get(namespace, name);
  const current = fm.spec.model;
  const target: FnolModelSpecModelInput = { ...requested };
  if (!target.credentialsSecretRef && current.credentialsSecretRef && opts.keepCredentials !== false) {
    target.credentialsSecretRef = current.credentialsSecretRef;
  }
  const unchanged = sameModelSpec(current, target);
  if (unchanged && rolloutState(fm, fm.metadata.generation ?? 0, target.version).state === 'ready') {
    opts.log(`${ref} already serves ${target.version}: nothing to do`);
    return fm;
  }
  // Rolling back to the model being replaced stays possible: it is recorded on the object.
  const previous = unchanged ? previousModel(fm) : current;
  // A promotion that changes nothing records nothing new (this run replaced no
  // model, so its failure hook must not roll one back); an existing record is
  // kept, as server-side apply would drop a field fnolctl owns and leaves out.
  const record: PromotionRecord | undefined = unchanged
    ? promotionRecord(fm)
    : opts.promotionId
      ? { id: opts.promotionId, from: current, to: target, state: 'applied' }
      : undefined;
  opts.log(
    `${ref}: ${current.version} -> ${target.version} (server-side apply of spec.model, field manager fnolctl` +
      `${record && !unchanged ? `, promotion ${record.id}` : ''})`,
  );
  const applied = await api.apply(namespace, name, applyBody(name, namespace, target, previous, { record }));
  const generation = applied.metadata.generation ?? 0;
  opts.log(
    `waiting for the operator to roll out ${target.version} (generation ${generation}, timeout ${Math.round(opts.timeoutMs / 1000)}s)`,
  );
  const outcome = await waitForRollout(api, namespace, name, generation, target.version, opts);
  if (outcome.state === 'ready') {
    opts.log(`${ref} serves ${target.version}: Ready`);
    return api.get(namespace, name);
  }

  const why = outcome.state === 'degraded' ? `Degraded: ${outcome.summary}` : outcome.summary;
  if (unchanged) {
    throw new PromotionError(`${ref} did not become Ready with ${target.version}: ${why}`, 3);
  }
  opts.log(`${target.version} failed (${why}); restoring the previous spec.model ${current.version}`);
  // The record says the restore happened, in the same write: the failure hook
  // then knows there is nothing left to undo.
  const restored = await api.apply(
    namespace,
    name,
    applyBody(name, namespace, current, previousModel(fm), {
      record: record ? { ...record, state: 'restored' } : undefined,
    }),
  );
  const back = await waitForRollout(
    api,
    namespace,
    name,
    restored.metadata.generation ?? 0,
    current.version,
    {
      ...opts,
      timeoutMs: opts.restoreTimeoutMs ?? opts.timeoutMs,
    },
  );
  if (back.state === 'ready') {
    throw new PromotionError(
      `promotion of ${target.version} failed (${why}); ${ref} was restored to ${current.version} and is Ready. ` +
        `Inspect with: npm run fnolctl -- status -n ${namespace} ${name}; kubectl -n ${namespace} describe fnolmodel ${name}`,
      3,
    );
  }
  throw new PromotionError(
    `promotion of ${target.version} failed (${why}) and the restored ${current.version} is not Ready either (${back.summary}); ` +
      `the spec is back to ${current.version}; check the operator's logs and the scorer pods`,
    4,
  );
}

/** Promotes the model recorded as previous (the one the last promotion replaced). */
export async function rollback(
  api: FnolModelApi,
  namespace: string,
  name: string,
  opts: PromoteOptions,
): Promise<FnolModel> {
  const fm = await api.get(namespace, name);
  const prev = previousModel(fm);
  if (!prev) {
    throw new PromotionError(
      `FnolModel ${namespace}/${name} has no previous model recorded (annotation ${Annotations.previousModel}); ` +
        'promote a specific version instead: fnolctl promote --model-version V --uri URI --sha256 HEX',
      1,
    );
  }
  opts.log(`rolling back FnolModel ${namespace}/${name} from ${fm.spec.model.version} to ${prev.version}`);
  return promote(api, namespace, name, prev, { ...opts, keepCredentials: false });
}

/**
 * The pipeline's failure hook: undoes the promotion that run `promotionId` made,
 * exactly once, and nothing else. A no-op (with the reason logged) when that
 * run promoted nothing (it failed earlier), when promote already restored the
 * previous model, when it was rolled back before, or when spec.model changed
 * since. The rollback and the record's new state are one apply with the
 * object's resourceVersion as precondition, so two hooks cannot both act.
 */
export async function rollbackIfPromotedBy(
  api: FnolModelApi,
  namespace: string,
  name: string,
  promotionId: string,
  opts: PromoteOptions,
): Promise<{ rolledBack: boolean; fm: FnolModel }> {
  // The operator writes the status (which moves resourceVersion) at any time:
  // a write refused for that is decided again on a fresh read, so the
  // precondition still guards against a second hook, not against the status.
  for (let attempt = 1; ; attempt++) {
    try {
      return await rollbackOnce(api, namespace, name, promotionId, opts);
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.statusCode !== 409 || attempt >= CONFLICT_ATTEMPTS) throw err;
      opts.log(`FnolModel ${namespace}/${name} changed meanwhile (e.g. its status); reading it again`);
    }
  }
}

/** Writes refused by the resourceVersion precondition that are decided again. */
const CONFLICT_ATTEMPTS = 5;

async function rollbackOnce(
  api: FnolModelApi,
  namespace: string,
  name: string,
  promotionId: string,
  opts: PromoteOptions,
): Promise<{ rolledBack: boolean; fm: FnolModel }> {
  const ref = `FnolModel ${namespace}/${name}`;
  const fm = await api.get(namespace, name);
  const decision = rollbackDecision(fm, promotionId);
  if (!decision.act) {
    opts.log(`nothing to roll back: ${decision.reason}`);
    return { rolledBack: false, fm };
  }
  const rec = promotionRecord(fm)!;
  if (decision.kind === 'canary') {
    // spec.model never changed: removing the candidate is the whole rollback.
    opts.log(`removing the canary ${rec.to.version} from ${ref} (${decision.reason})`);
    await api.patch(namespace, name, {
      metadata: {
        resourceVersion: fm.metadata.resourceVersion,
        annotations: { [Annotations.promotion]: JSON.stringify({ ...rec, state: 'rolled-back' }) },
      },
      spec: { canary: null },
    });
    opts.log(`${ref} serves ${fm.spec.model.version} only: spec.canary removed`);
    return { rolledBack: true, fm: await api.get(namespace, name) };
  }
  opts.log(`rolling back ${ref} from ${rec.to.version} to ${decision.to.version} (${decision.reason})`);
  const applied = await api.apply(
    namespace,
    name,
    applyBody(name, namespace, decision.to, rec.to, {
      record: { ...rec, state: 'rolled-back' },
      resourceVersion: fm.metadata.resourceVersion,
    }),
  );
  const outcome = await waitForRollout(
    api,
    namespace,
    name,
    applied.metadata.generation ?? 0,
    decision.to.version,
    { ...opts, timeoutMs: opts.restoreTimeoutMs ?? opts.timeoutMs },
  );
  if (outcome.state !== 'ready') {
    // No further restore: going back to the version that just failed would undo the rollback.
    throw new PromotionError(
      `rolled ${ref} back to ${decision.to.version}, but it is not Ready (${outcome.summary}); ` +
        `the spec stays at ${decision.to.version}; check the operator's logs and the scorer pods`,
      4,
    );
  }
  opts.log(`${ref} serves ${decision.to.version} again: Ready`);
  return { rolledBack: true, fm: await api.get(namespace, name) };
}
