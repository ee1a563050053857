// The one model downloader of the project, used by the operator (digest check
// before a rollout) and the scorer (model load). See docs/security.md.

export { ModelFetchError, publicSummary, TRANSIENT_STATUS, type FetchFailure } from './errors';
export { checkTarget, fetchModelFile, type FetchOptions, type FetchResult, type RetryInfo } from './fetch';
export {
  DEFAULT_AUTHORITY_HOSTS,
  parseAuthorityHosts,
  STORAGE_API_VERSION,
  STORAGE_SCOPE,
  workloadIdentityFromEnv,
  WorkloadIdentityToken,
  type BearerTokenSource,
  type WorkloadIdentityConfig,
} from './identity';
export {
  DEFAULT_ALLOWED_HOSTS,
  describePolicy,
  describeUri,
  hostAllowed,
  parseAllowedHosts,
  PolicyConfigError,
  type FetchPolicy,
  type HostPattern,
} from './policy';
