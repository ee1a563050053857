// What the HTTP layer serves right now: the loaded model (once it passed its
// self-test) and whether the process is shutting down.

import type { ModelRuntime, SelfTestResult } from './model-runtime';

export interface ServedModel {
  readonly runtime: ModelRuntime;
  readonly sha256: string | undefined;
  readonly card: unknown;
  readonly selfTest: SelfTestResult;
}

export class ServingState {
  private served: ServedModel | undefined;
  private drainingSince: number | undefined;
  private failure: string | undefined;
  private readonly drainListeners: (() => void)[] = [];

  /** Installs a model; it is served only if its self-test passed. */
  setModel(model: ServedModel): void {
    this.served = model;
  }

  /** Records why the model could not be loaded (shown by /readyz). */
  setFailure(reason: string): void {
    this.failure = reason;
  }

  startDraining(now: number): void {
    if (this.drainingSince !== undefined) return;
    this.drainingSince = now;
    for (const listener of this.drainListeners) listener();
  }

  /** Calls `listener` once when draining starts. */
  onDraining(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** The model if it may be used for scoring: loaded and self-tested. */
  get model(): ServedModel | undefined {
    return this.served?.selfTest.passed ? this.served : undefined;
  }

  get ready(): boolean {
    return this.model !== undefined && !this.draining;
  }

  get notReadyReason(): string {
    if (this.draining) return 'shutting down';
    if (this.failure !== undefined) return this.failure;
    if (this.served === undefined) return 'model is loading';
    if (!this.served.selfTest.passed) {
      return `model self-test failed: ${this.served.selfTest.mismatches.slice(0, 5).join('; ')}`;
    }
    return 'ready';
  }
}
