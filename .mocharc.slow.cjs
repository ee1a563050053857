// npm run test:slow: the suites that start processes or tools, and the stress suites (test/tiers.cjs).
const { base, processes, stress } = require('./test/tiers.cjs');

module.exports = { ...base, spec: [...processes, ...stress] };
