/**
 * Metric names for the monitoring tests: the names the code exports (read
 * from the metric registries the scorer and the operator build, with
 * prom-client's process and Node.js metrics), and the metric names a PromQL
 * query reads.
 */
import { createMetrics } from '../../scorer/src/metrics';
import { OperatorMetrics } from '../../operator/src/metrics';
import { createPayloadLogMetrics } from '../../scorer/src/payload-log/payload-log';

/** Series Prometheus itself adds to every scrape. */
export const SCRAPE_SERIES = ['up'];

/**
 * Every series name the scorer and the operator export on /metrics: counters
 * and gauges by name, histograms as their _bucket, _sum and _count series,
 * summaries as their _sum and _count series and the name itself (quantiles).
 */
export async function exportedSeries(): Promise<Set<string>> {
  const scorer = createMetrics([1, 10, 100]).registry;
  // Registered only when payload logging is on.
  createPayloadLogMetrics(scorer);
  const registries = [scorer, new OperatorMetrics().registry];
  const names = new Set<string>();
  for (const registry of registries) {
    for (const metric of await registry.getMetricsAsJSON()) {
      const { name } = metric;
      const type = String(metric.type);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
      else names.add(name);
    }
  }
  return names;
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression (or a Grafana query with $variables)
 * selects: identifiers that are not functions, keywords, label names of
 * grouping clauses or matchers, durations or numbers. label_values(m{...}, l)
 * gives m.
 */
export function metricNames(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings (label values, regexes)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery selectors
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables outside strings
  s = s.replace(/\blabel_values\s*\(\s*([A-Za-z_:][\w:]*)\s*,[^)]*\)/g, ' $1 ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  s = s.replace(/\boffset\s+-?[\dsmhdwy]+/g, ' ');
  s = s.replace(/\b\d+(\.\d+)?([eE][-+]?\d+)?[smhdwy]?\b/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const rest = s.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}
