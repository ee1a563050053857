/** Helpers shared with the integration suites, usable outside mocha. */
export {
  childOperator,
  installCrd,
  ModelServer,
  modelManifest,
} from '../../operator/test/integration/harness';
