// The pipeline's Test stage (pipeline/test.sh): both tiers, unit and slow (test/tiers.cjs).
const { base, local, stress } = require('./test/tiers.cjs');

module.exports = { ...base, spec: [...local, ...stress] };
