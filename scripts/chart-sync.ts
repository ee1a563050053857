// Keeps the Helm chart (charts/fnol-operator/) in step with the files it
// shares with the kustomize install: each pair below is copied byte for byte.
// The copies are the chart's (Helm reads only files inside the chart); the
// originals are the sources. A test fails when a copy differs.
//
//   npm run chart:sync              copy every source into the chart
//   npm run chart:sync -- --check   exit 1, naming each copy that differs, without writing
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

export const ROOT = path.resolve(__dirname, '..');
export const CHART_DIR = path.join(ROOT, 'charts', 'fnol-operator');

/** [source, copy in the chart], relative to the repository root. */
export const CHART_COPIES: readonly (readonly [string, string])[] = [
  ['crds/fnolmodel.yaml', 'charts/fnol-operator/crds/fnolmodel.yaml'],
  ['manifests/admission/policy.yaml', 'charts/fnol-operator/files/admission-policy.yaml'],
  ['manifests/monitoring/podmonitors.yaml', 'charts/fnol-operator/files/podmonitors.yaml'],
  ['manifests/monitoring/prometheusrule.yaml', 'charts/fnol-operator/files/prometheusrule.yaml'],
];

/** The copies (relative paths) that are missing or differ from their source. */
export function staleCopies(root = ROOT): string[] {
  return CHART_COPIES.filter(([source, copy]) => {
    const target = path.join(root, copy);
    return !existsSync(target) || !readFileSync(target).equals(readFileSync(path.join(root, source)));
  }).map(([, copy]) => copy);
}

/** Copies every source over its chart copy; returns the copies written. */
export function syncChart(root = ROOT): string[] {
  const stale = staleCopies(root);
  for (const [source, copy] of CHART_COPIES) {
    if (!stale.includes(copy)) continue;
    mkdirSync(path.dirname(path.join(root, copy)), { recursive: true });
    writeFileSync(path.join(root, copy), readFileSync(path.join(root, source)));
  }
  return stale;
}

function main(): void {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  if (values.check) {
    const stale = staleCopies();
    if (stale.length > 0) {
      const names = stale.join(', ');
      console.error(`the chart's copies differ from their sources: ${names}; run npm run chart:sync`);
      process.exit(1);
    }
    console.log(`chart copies current (${CHART_COPIES.length} files)`);
    return;
  }
  const written = syncChart();
  console.log(written.length === 0 ? 'chart copies already current' : `updated ${written.join(', ')}`);
}

if (require.main === module) main();
