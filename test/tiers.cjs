// The mocha tiers of the TypeScript suites (docs/development.md, The inner loop).
// `unit` is the inner loop: in-process suites only, no child process, no
// external tool, no timer-bound waits. `slow` holds the suites that start real
// processes or tools (scorer processes, Azurite, python, helm, Lua, promtool,
// kubectl) and the scorer's stress suites. `npm run test:unit` runs unit,
// `npm run test:slow` runs slow, and the pipeline's Test stage and `npm test`
// run both: a file moves between tiers, it never drops out.

/** Globs of the suites that need no cluster and no root. */
const local = [
  'lib/**/*.test.ts',
  'operator/test/unit/**/*.test.ts',
  'cli/test/unit/**/*.test.ts',
  'scorer/test/*.test.ts',
  'pipeline/test/unit/**/*.test.ts',
  'test/supply-chain/**/*.test.ts',
  'test/layout/**/*.test.ts',
  'test/monitoring/**/*.test.ts',
  'test/helm/chart.test.ts',
  'test/helm/argocd-health.test.ts',
];

/** Suites of `local` that start processes or tools: the slow tier. */
const processes = [
  'lib/api/test/generated-types.test.ts',
  'lib/model-fetch/test/identity.test.ts',
  'operator/test/unit/process-guard.test.ts',
  'scorer/test/azurite.test.ts',
  'scorer/test/drift.test.ts',
  'scorer/test/payload-log.test.ts',
  'scorer/test/process.test.ts',
  'scorer/test/shadow.test.ts',
  'scorer/test/shadow-process.test.ts',
  'pipeline/test/unit/image-artifacts.test.ts',
  'pipeline/test/unit/pipeline-schema.test.ts',
  'pipeline/test/unit/render-operator.test.ts',
  'test/monitoring/monitoring.test.ts',
  'test/helm/chart.test.ts',
  'test/helm/argocd-health.test.ts',
];

/** The scorer's attack and soak suites (minutes). */
const stress = ['scorer/test/stress/**/*.test.ts'];

/** Options every tier shares. */
const base = { require: ['tsx/cjs'], extension: ['ts'], timeout: 120000, exit: true };

module.exports = { local, processes, stress, base };
