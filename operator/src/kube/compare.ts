/**
 * Decides whether an owned object needs applying. Server-side apply of an
 * unchanged object is still a write request; skipping it keeps the operator at
 * zero writes per minute when nothing changes. An object is applied when the
 * hash of its desired state differs from the one recorded on the live object,
 * or when a field we set differs on the live object (drift).
 */
import { createHash } from 'node:crypto';
import { Annotations } from '@fnol/api';

export const ANNOTATION_APPLIED_HASH = Annotations.appliedHash;

export function desiredHash(obj: unknown): string {
  return createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 16);
}

const QUANTITY = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([KMGTPE]i|[numkMGTPE])?$/;
const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Numeric value of a Kubernetes quantity ("500m", "1Gi"), or undefined. */
export function quantityValue(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  const m = QUANTITY.exec(v);
  if (!m || m[1] === undefined) return undefined;
  const n = Number(m[1]);
  if (Number.isNaN(n)) return undefined;
  return n * (SUFFIX[m[2] ?? ''] ?? 1);
}

const QUANTITY_KEYS = new Set(['requests', 'limits', 'sizeLimit']);

/**
 * True when every field of `desired` has the same value in `live` (extra fields
 * in live, such as defaults and status, are ignored). Lists must have the same
 * length and match item by item. Resource quantities compare by value
 * ("1000m" = "1"); every other string compares exactly.
 */
export function isSubset(desired: unknown, live: unknown, quantities = false): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, live[i], quantities));
  }
  if (desired !== null && typeof desired === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) =>
      isSubset(v, l[k], quantities || QUANTITY_KEYS.has(k)),
    );
  }
  if (desired === live) return true;
  if (quantities) {
    const a = quantityValue(desired);
    const b = quantityValue(live);
    return a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-12;
  }
  return false;
}

/** True when the live object already carries everything desired (and was applied from the same desired state). */
export function upToDate(
  desired: { metadata?: { annotations?: Record<string, string> } },
  live: unknown,
): boolean {
  const hash = desired.metadata?.annotations?.[ANNOTATION_APPLIED_HASH];
  const liveHash = (live as { metadata?: { annotations?: Record<string, string> } } | undefined)?.metadata
    ?.annotations?.[ANNOTATION_APPLIED_HASH];
  return hash !== undefined && hash === liveHash && isSubset(desired, live);
}

/** Returns a copy of obj with the applied-hash annotation set. */
export function withAppliedHash<T extends { metadata?: { annotations?: Record<string, string> } }>(
  obj: T,
): T {
  const hash = desiredHash(obj);
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      annotations: { ...(obj.metadata?.annotations ?? {}), [ANNOTATION_APPLIED_HASH]: hash },
    },
  };
}
