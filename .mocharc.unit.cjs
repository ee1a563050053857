// npm run test:unit: the in-process suites (test/tiers.cjs).
const { base, local, processes } = require('./test/tiers.cjs');

module.exports = { ...base, spec: local, ignore: processes };
