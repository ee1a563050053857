/**
 * status.canary.comparison: the candidate against the stable version on the
 * mirrored copies of the same requests, summed over the stable pods.
 *
 * Each stable pod that mirrors answers GET /shadow with its own counters and
 * histograms since it started mirroring (docs/scorer.md). Those answers are
 * untrusted input: a pod's body is read up to MAX_SHADOW_BYTES, and a report is
 * used only when every number is finite and not negative, every count an
 * integer, the bucket bounds exactly the ones below and every histogram one
 * longer than its bounds (the last bucket is +Inf); otherwise that pod is
 * left out and the reason logged. Only pods mirroring to the spec's candidate
 * version count.
 *
 * Quantiles come from the summed histograms by linear interpolation inside
 * the bucket that holds the rank (as Prometheus' histogram_quantile does); a
 * rank in the +Inf bucket reports the last finite bound.
 *
 * The pure parts (parseShadowReport, sumReports, quantile, comparisonOf) hold
 * the logic; fetchShadow and collectComparison do the HTTP, and readComparison
 * finds the stable pods (comparison-collector.ts calls it, off the workers).
 */
import * as http from 'node:http';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiPath, type FnolModelStatusCanaryComparison } from '@fnol/api';
import type { ComparisonTarget, ReadComparison } from './comparison-collector';
import type { KubeClient } from './kube/client';
import { SCORER_PORT } from './reconcilers/common';

/** While the stable pods mirror, status.canary.comparison is read this often. */
export const COMPARISON_PERIOD_MS = 15_000;
/** How long one pod's GET /shadow may take. */
export const SHADOW_TIMEOUT_MS = 2_000;

/** Upper bounds of the relative-difference histogram (the scorer's; the first holds exact agreement). */
export const DIFFERENCE_BUCKETS: readonly number[] = [
  0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,
];
/** Upper bounds of the latency histograms, in seconds (the scorer's). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
/** Largest /shadow body read from one pod. */
export const MAX_SHADOW_BYTES = 256 * 1024;
/** Most outputs one report may list. */
export const MAX_OUTPUTS = 64;
const OUTPUT_NAME = /^[A-Za-z0-9_.:/-]{1,128}$/;
/** Most pods read for one comparison. */
export const MAX_PODS = 100;

export class ShadowReportError extends Error {
  override name = 'ShadowReportError';
}

export interface OutputFigures {
  records: number;
  exceeding: number;
  /** Per bucket, not cumulative; DIFFERENCE_BUCKETS.length + 1 long. */
  counts: number[];
}

/** One stable pod's mirror figures, validated. */
export interface ShadowReport {
  candidateVersion: string;
  threshold: number;
  compared: number;
  dropped: number;
  candidateErrors: number;
  outputs: Map<string, OutputFigures>;
  latency: { stable: number[]; candidate: number[] };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ShadowReportError(`${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function nonNegative(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ShadowReportError(`${field} must be a finite non-negative number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function sameBounds(v: unknown, expected: readonly number[], field: string): void {
  if (!Array.isArray(v) || v.length !== expected.length || v.some((x, i) => x !== expected[i])) {
    throw new ShadowReportError(`${field} must be [${expected.join(', ')}]`);
  }
}

function histogram(v: unknown, bounds: readonly number[], field: string): number[] {
  if (!Array.isArray(v) || v.length !== bounds.length + 1) {
    throw new ShadowReportError(`${field} must hold ${bounds.length + 1} counts (one per bucket and +Inf)`);
  }
  return v.map((x, i) => count(x, `${field}[${i}]`));
}

/**
 * A pod's GET /shadow body, checked. undefined when the pod does not mirror
 * ({"enabled": false}); ShadowReportError naming the first bad field otherwise.
 */
export function parseShadowReport(body: unknown): ShadowReport | undefined {
  if (!isObject(body)) throw new ShadowReportError('the body must be a JSON object');
  if (body.enabled === false) return undefined;
  if (body.enabled !== true) throw new ShadowReportError('enabled must be true or false');
  const version = body.candidateVersion;
  if (typeof version !== 'string' || version.length === 0 || version.length > 63) {
    throw new ShadowReportError('candidateVersion must be a version string of 1 to 63 characters');
  }
  sameBounds(body.differenceBuckets, DIFFERENCE_BUCKETS, 'differenceBuckets');
  sameBounds(body.latencyBuckets, LATENCY_BUCKETS, 'latencyBuckets');
  if (!isObject(body.outputs)) throw new ShadowReportError('outputs must be an object');
  const names = Object.keys(body.outputs);
  if (names.length > MAX_OUTPUTS)
    throw new ShadowReportError(`outputs lists more than ${MAX_OUTPUTS} outputs`);
  const outputs = new Map<string, OutputFigures>();
  for (const name of names) {
    if (!OUTPUT_NAME.test(name))
      throw new ShadowReportError(`output name ${JSON.stringify(name.slice(0, 130))} is not allowed`);
    const o = body.outputs[name];
    if (!isObject(o)) throw new ShadowReportError(`outputs.${name} must be an object`);
    const records = count(o.records, `outputs.${name}.records`);
    const exceeding = count(o.exceeding, `outputs.${name}.exceeding`);
    if (exceeding > records) {
      throw new ShadowReportError(
        `outputs.${name}.exceeding (${exceeding}) is more than its records (${records})`,
      );
    }
    outputs.set(name, {
      records,
      exceeding,
      counts: histogram(o.counts, DIFFERENCE_BUCKETS, `outputs.${name}.counts`),
    });
  }
  if (!isObject(body.latency)) throw new ShadowReportError('latency must be an object');
  return {
    candidateVersion: version,
    threshold: nonNegative(body.threshold, 'threshold'),
    compared: count(body.compared, 'compared'),
    dropped: count(body.dropped, 'dropped'),
    candidateErrors: count(body.candidateErrors, 'candidateErrors'),
    outputs,
    latency: {
      stable: histogram(body.latency.stable, LATENCY_BUCKETS, 'latency.stable'),
      candidate: histogram(body.latency.candidate, LATENCY_BUCKETS, 'latency.candidate'),
    },
  };
}

export interface Totals {
  pods: number;
  compared: number;
  dropped: number;
  candidateErrors: number;
  /** The largest threshold reported (the pods of one Deployment share it). */
  threshold: number;
  outputs: Map<string, OutputFigures>;
  latency: { stable: number[]; candidate: number[] };
}

function addInto(into: number[], from: number[]): void {
  for (let i = 0; i < from.length; i++) into[i] = (into[i] ?? 0) + from[i]!;
}

/** The reports summed: counters added, histograms added bucket by bucket. */
export function sumReports(reports: readonly ShadowReport[]): Totals {
  const zeros = (n: number) => new Array<number>(n + 1).fill(0);
  const t: Totals = {
    pods: reports.length,
    compared: 0,
    dropped: 0,
    candidateErrors: 0,
    threshold: 0,
    outputs: new Map(),
    latency: { stable: zeros(LATENCY_BUCKETS.length), candidate: zeros(LATENCY_BUCKETS.length) },
  };
  for (const r of reports) {
    t.compared += r.compared;
    t.dropped += r.dropped;
    t.candidateErrors += r.candidateErrors;
    t.threshold = Math.max(t.threshold, r.threshold);
    for (const [name, o] of r.outputs) {
      let sum = t.outputs.get(name);
      if (!sum) {
        sum = { records: 0, exceeding: 0, counts: zeros(DIFFERENCE_BUCKETS.length) };
        t.outputs.set(name, sum);
      }
      sum.records += o.records;
      sum.exceeding += o.exceeding;
      addInto(sum.counts, o.counts);
    }
    addInto(t.latency.stable, r.latency.stable);
    addInto(t.latency.candidate, r.latency.candidate);
  }
  return t;
}

/**
 * The q-quantile (0..1) of a histogram with per-bucket counts (the last one
 * +Inf), by linear interpolation within the bucket holding the rank; the first
 * bucket starts at 0. undefined for an empty histogram.
 */
export function quantile(
  bounds: readonly number[],
  counts: readonly number[],
  q: number,
): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0 || !(q >= 0 && q <= 1)) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && below + c >= rank) {
      // The +Inf bucket has no upper bound: report the last finite one.
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return lower + (upper - lower) * Math.max(0, (rank - below) / c);
    }
    below += c;
  }
  return bounds[bounds.length - 1];
}

/** status.canary.comparison from the summed figures. */
export function comparisonOf(t: Totals, now: Date): FnolModelStatusCanaryComparison {
  const attempted = t.compared + t.candidateErrors;
  const out: FnolModelStatusCanaryComparison = {
    requests: t.compared,
    dropped: t.dropped,
    candidateErrors: t.candidateErrors,
    candidateErrorRate: attempted > 0 ? t.candidateErrors / attempted : 0,
    outputs: [...t.outputs.keys()].sort().map((name) => {
      const o = t.outputs.get(name)!;
      const median = quantile(DIFFERENCE_BUCKETS, o.counts, 0.5);
      const p95 = quantile(DIFFERENCE_BUCKETS, o.counts, 0.95);
      return {
        name,
        ...(median !== undefined ? { medianRelativeDifference: median } : {}),
        ...(p95 !== undefined ? { p95RelativeDifference: p95 } : {}),
        threshold: t.threshold,
        exceedingShare: o.records > 0 ? o.exceeding / o.records : 0,
      };
    }),
    pods: t.pods,
    updatedAt: now.toISOString(),
  };
  const stable = quantile(LATENCY_BUCKETS, t.latency.stable, 0.99);
  const candidate = quantile(LATENCY_BUCKETS, t.latency.candidate, 0.99);
  if (stable !== undefined) out.stableLatencyP99Seconds = stable;
  if (candidate !== undefined) out.candidateLatencyP99Seconds = candidate;
  return out;
}

export interface FetchOptions {
  timeoutMs: number;
  maxBytes?: number;
}

/** GET a pod's /shadow and parse it as JSON; the body is bounded and a non-200 answer is an error. */
export function fetchShadow(url: string, opts: FetchOptions): Promise<unknown> {
  const max = opts.maxBytes ?? MAX_SHADOW_BYTES;
  return new Promise((resolve, reject) => {
    let settled = false;
    // One deadline for the whole exchange: a pod that trickles bytes cannot hold the reconcile.
    const deadline = setTimeout(
      () => fail(new ShadowReportError(`GET ${url}: no answer within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(err);
      req.destroy();
    };
    const req = http.get(url, { headers: { accept: 'application/json' } }, (res) => {
      res.on('error', fail);
      if (res.statusCode !== 200) {
        fail(new ShadowReportError(`GET ${url} answered ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) fail(new ShadowReportError(`GET ${url}: the body is larger than ${max} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new ShadowReportError(`GET ${url}: the body is not JSON`));
        }
      });
    });
    req.on('error', fail);
  });
}

/** The /shadow URL of a pod IP on the scorer port. */
export function shadowUrl(podIP: string, port: number): string {
  const host = podIP.includes(':') ? `[${podIP}]` : podIP;
  return `http://${host}:${port}/shadow`;
}

export interface SkippedPod {
  url: string;
  reason: string;
}

/**
 * Reads /shadow from each URL at once (at most MAX_PODS), keeps the valid
 * reports mirroring to `candidateVersion`, and sums them. Pods left out are
 * returned with the reason, for the log.
 */
export async function collectComparison(
  urls: readonly string[],
  candidateVersion: string,
  opts: FetchOptions,
  now: Date,
): Promise<{ comparison: FnolModelStatusCanaryComparison; skipped: SkippedPod[] }> {
  const skipped: SkippedPod[] = [];
  const reports: ShadowReport[] = [];
  await Promise.all(
    urls.slice(0, MAX_PODS).map(async (url) => {
      try {
        const report = parseShadowReport(await fetchShadow(url, opts));
        if (!report) skipped.push({ url, reason: 'not mirroring (enabled: false)' });
        else if (report.candidateVersion !== candidateVersion)
          skipped.push({
            url,
            reason: `mirrors to version ${report.candidateVersion}, not ${candidateVersion}`,
          });
        else reports.push(report);
      } catch (err) {
        skipped.push({ url, reason: (err as Error).message });
      }
    }),
  );
  return { comparison: comparisonOf(sumReports(reports), now), skipped };
}

const ENDPOINT_SLICES = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' };
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * The addresses of ready, not terminating endpoints (a ready condition left
 * unset counts as ready, as the EndpointSlice API says), each once.
 */
export function readyAddresses(slices: V1EndpointSlice[]): string[] {
  const out = new Set<string>();
  for (const slice of slices) {
    for (const ep of slice.endpoints ?? []) {
      if (ep.conditions?.ready === false || ep.conditions?.terminating === true) continue;
      const ip = ep.addresses?.[0];
      if (ip) out.add(ip);
    }
  }
  return [...out];
}

/**
 * The figures of one FnolModel: the ready stable pods from the stable
 * Service's EndpointSlices (it selects the stable pods only, and the slices
 * hold their addresses and readiness, nothing else of the pods), then their
 * GET /shadow, summed.
 */
export function readComparison(
  client: KubeClient,
  log: Logger,
  clock: () => Date = () => new Date(),
): ReadComparison {
  return async (target: ComparisonTarget) => {
    const slices = await client.list<V1EndpointSlice>(
      apiPath(ENDPOINT_SLICES, { namespace: target.namespace }),
      `${SERVICE_NAME_LABEL}=${target.name}`,
    );
    const urls = readyAddresses(slices.items).map((ip) => shadowUrl(ip, SCORER_PORT));
    const { comparison, skipped } = await collectComparison(
      urls,
      target.version,
      { timeoutMs: SHADOW_TIMEOUT_MS },
      clock(),
    );
    for (const s of skipped) {
      log.warn(
        { fnolmodel: `${target.namespace}/${target.name}`, url: s.url, reason: s.reason },
        'left a pod out of the canary comparison',
      );
    }
    return comparison;
  };
}
