// Generated from crds/fnolmodel.yaml by `npm run api:types`. Do not edit.
// A unit test fails when this file and the CRD disagree.

/**
 * What to serve and how.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecInput.
 */
export interface FnolModelSpec {
  /**
   * The compiled ONNX model to serve.
   */
  model: FnolModelSpecModel;
  /**
   * Name of the model in the ONNX metadata (its name entry). The scorer refuses to serve a file with another name, answers with it in model and model_name, and serves the v2 paths /v2/models/{modelName}. Lower case letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 63 characters.
   */
  modelName: string;
  /**
   * Scorer container image. Defaults to the operator's configured scorer image.
   */
  image?: string;
  /**
   * Number of scorer pods. Ignored when autoscaling is set.
   */
  replicas: number;
  /**
   * When set, a HorizontalPodAutoscaler scales the scorer between minReplicas and maxReplicas on CPU.
   */
  autoscaling?: FnolModelSpecAutoscaling;
  /**
   * Scorer container resources (standard Kubernetes requests and limits).
   */
  resources: FnolModelSpecResources;
  /**
   * Node labels the scorer pods must run on (standard pod nodeSelector), e.g. a dedicated node pool.
   */
  nodeSelector?: Record<string, string>;
  /**
   * Taints the scorer pods tolerate (standard pod tolerations), e.g. of a dedicated node pool.
   */
  tolerations?: Array<FnolModelSpecTolerationsItem>;
  /**
   * Expose the scorer through an Ingress. Without it the model is reachable in the cluster only (status.url is the Service URL).
   */
  ingress?: FnolModelSpecIngress;
  /**
   * A candidate version served beside spec.model by its own pods. trafficPercent of live requests are answered by it (needs spec.gateway); mirrorPercent of the stable version's requests are also sent to it as a copy, its answers compared with the stable ones and discarded. fnolctl promote --mirror/--canary steps through both and moves the candidate into spec.model.
   */
  canary?: FnolModelSpecCanary;
  /**
   * Expose the scorer through a Gateway API HTTPRoute attached to an existing Gateway. Needed for spec.canary.trafficPercent (weighted backends). May be set together with spec.ingress.
   */
  gateway?: FnolModelSpecGateway;
  /**
   * Require an API key or an OIDC bearer token (Entra ID) on scoring requests. With both, either is accepted.
   */
  auth?: FnolModelSpecAuth;
  /**
   * Payload logging for audit and retraining. Each sampled scoring request is written with its inputs (by feature name, redacted fields hashed or left out) and predictions, asynchronously; a full buffer or a failing sink drops records (counted in scorer_payload_log_dropped_total), never requests. Off without this field. See docs/payload-logging.md.
   */
  logging?: FnolModelSpecLogging;
  /**
   * Monitoring settings of this model's scorer pods. Where traces are exported is not set here but by the cluster admin on the operator (docs/operations.md, Tracing).
   */
  monitoring?: FnolModelSpecMonitoring;
}

/**
 * Monitoring settings of this model's scorer pods. Where traces are exported is not set here but by the cluster admin on the operator (docs/operations.md, Tracing).
 */
export interface FnolModelSpecMonitoring {
  /**
   * Drift monitoring of inputs and outputs against the reference distributions the compiled model carries (docs/scorer.md, Drift). On by default with the scorer's defaults; a model without references exports no drift series either way. A change rolls the scorer pods.
   */
  drift?: FnolModelSpecMonitoringDrift;
}

/**
 * Drift monitoring of inputs and outputs against the reference distributions the compiled model carries (docs/scorer.md, Drift). On by default with the scorer's defaults; a model without references exports no drift series either way. A change rolls the scorer pods.
 */
export interface FnolModelSpecMonitoringDrift {
  /**
   * false turns drift monitoring off for this model (DRIFT=off in the scorer).
   */
  enabled?: boolean;
  /**
   * Records the PSI is computed over, the last ones scored (DRIFT_WINDOW; scorer default 10000), counted in two halves, so a full window holds between half of it and all of it. The scorer's memory does not grow with it.
   */
  window?: number;
  /**
   * Records needed in the window before a PSI is exported (DRIFT_MIN_RECORDS; scorer default 1000, or the window if smaller).
   */
  minRecords?: number;
  /**
   * The PSI is recomputed at most this often, when /metrics is read (DRIFT_UPDATE_SECONDS; scorer default 5; 0 on every read).
   */
  updateSeconds?: number;
}

/**
 * Payload logging for audit and retraining. Each sampled scoring request is written with its inputs (by feature name, redacted fields hashed or left out) and predictions, asynchronously; a full buffer or a failing sink drops records (counted in scorer_payload_log_dropped_total), never requests. Off without this field. See docs/payload-logging.md.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecLoggingInput.
 */
export interface FnolModelSpecLogging {
  /**
   * Share of answered scoring requests logged, from 0 (off) to 1 (all).
   */
  sampleRate: number;
  /**
   * Where the records go.
   */
  sink?: FnolModelSpecLoggingSink;
  /**
   * Which input fields are not logged as sent. Free-text features (string features without a list of categories in the model contract) are redacted unless freeText is false.
   */
  redact?: FnolModelSpecLoggingRedact;
}

/**
 * Which input fields are not logged as sent. Free-text features (string features without a list of categories in the model contract) are redacted unless freeText is false.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecLoggingRedactInput.
 */
export interface FnolModelSpecLoggingRedact {
  /**
   * Feature names to redact (besides free text). The scorer drops every sampled record when one is not a feature of the served model, rather than log it unredacted.
   */
  fields?: Array<string>;
  /**
   * drop leaves the field out; hash writes hmac-sha256:HEX, keyed with hashKeySecretRef (equal values stay joinable, the value cannot be read back).
   */
  mode: 'drop' | 'hash';
  /**
   * Also redact every free-text feature.
   */
  freeText: boolean;
  /**
   * Secret holding the hashing key (at least 16 bytes), labelled serving.fnol.io/model-credentials "true". Mounted read-only into the scorer.
   */
  hashKeySecretRef?: FnolModelSpecLoggingRedactHashKeySecretRef;
}

/**
 * Secret holding the hashing key (at least 16 bytes), labelled serving.fnol.io/model-credentials "true". Mounted read-only into the scorer.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecLoggingRedactHashKeySecretRefInput.
 */
export interface FnolModelSpecLoggingRedactHashKeySecretRef {
  name: string;
  /**
   * Key in the Secret holding the hashing key.
   */
  key: string;
}

/**
 * Where the records go.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecLoggingSinkInput.
 */
export interface FnolModelSpecLoggingSink {
  /**
   * stdout (JSON Lines on the scorer's standard output, for the cluster's log collector) or blob (Azure Blob Storage, one Append Blob per pod per time window).
   */
  type: 'stdout' | 'blob';
  blob?: FnolModelSpecLoggingSinkBlob;
}

/**
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecLoggingSinkBlobInput.
 */
export interface FnolModelSpecLoggingSinkBlob {
  /**
   * https://ACCOUNT.blob.core.windows.net/CONTAINER. Its host must be on the operator's MODEL_ALLOWED_HOSTS, like model URIs. No query string; the SAS token goes in the Secret.
   */
  containerUrl: string;
  /**
   * Secret in the same namespace holding a SAS token with add, create and write permissions on the container. It must be labelled serving.fnol.io/model-credentials "true", like model credentials. Mounted read-only into the scorer.
   */
  credentialsSecretRef: FnolModelSpecLoggingSinkBlobCredentialsSecretRef;
}

/**
 * Secret in the same namespace holding a SAS token with add, create and write permissions on the container. It must be labelled serving.fnol.io/model-credentials "true", like model credentials. Mounted read-only into the scorer.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecLoggingSinkBlobCredentialsSecretRefInput.
 */
export interface FnolModelSpecLoggingSinkBlobCredentialsSecretRef {
  name: string;
  /**
   * Key in the Secret holding the SAS token.
   */
  key: string;
}

/**
 * Require an API key or an OIDC bearer token (Entra ID) on scoring requests. With both, either is accepted.
 */
export interface FnolModelSpecAuth {
  /**
   * Accept OpenID Connect bearer tokens (Entra ID access tokens) from callers. The scorer checks the signature against the issuer's published keys (fetched on first use, cached, fetched again for an unknown key id), the issuer, the audience, expiry and not-before (60 s clock skew) and the required app roles. The scorer pods may connect to the key set's host only (NetworkPolicy, from the operator's IDENTITY_EGRESS).
   */
  oidc?: FnolModelSpecAuthOidc;
  /**
   * Secret key holding the accepted API keys, one per line. Mounted read-only into the scorer.
   */
  apiKeySecretRef?: FnolModelSpecAuthApiKeySecretRef;
}

/**
 * Secret key holding the accepted API keys, one per line. Mounted read-only into the scorer.
 */
export interface FnolModelSpecAuthApiKeySecretRef {
  name: string;
  key: string;
}

/**
 * Accept OpenID Connect bearer tokens (Entra ID access tokens) from callers. The scorer checks the signature against the issuer's published keys (fetched on first use, cached, fetched again for an unknown key id), the issuer, the audience, expiry and not-before (60 s clock skew) and the required app roles. The scorer pods may connect to the key set's host only (NetworkPolicy, from the operator's IDENTITY_EGRESS).
 */
export interface FnolModelSpecAuthOidc {
  /**
   * The iss claim every token must carry, exactly, e.g. https://login.microsoftonline.com/TENANT_ID/v2.0.
   */
  issuer: string;
  /**
   * Accepted aud values (the application ID URI or client ID of the scorer's app registration); a token must name one.
   */
  audiences: Array<string>;
  /**
   * App roles every token must carry in its roles claim (e.g. Scorer.Invoke); a token without one of them gets 403.
   */
  requiredRoles?: Array<string>;
  /**
   * Where the issuer publishes its signing keys (its jwks_uri). Derived for an Entra ID v2 issuer.
   */
  jwksUri?: string;
}

/**
 * Expose the scorer through a Gateway API HTTPRoute attached to an existing Gateway. Needed for spec.canary.trafficPercent (weighted backends). May be set together with spec.ingress.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecGatewayInput.
 */
export interface FnolModelSpecGateway {
  /**
   * The Gateway the HTTPRoute attaches to.
   */
  parentRef: FnolModelSpecGatewayParentRef;
  /**
   * Host names the route matches (DNS-1123 subdomains); every host of the Gateway's listener when empty.
   */
  hostnames?: Array<string>;
  /**
   * Path prefix routed to the scorer.
   */
  path: string;
}

/**
 * The Gateway the HTTPRoute attaches to.
 */
export interface FnolModelSpecGatewayParentRef {
  name: string;
  /**
   * The Gateway's namespace; the FnolModel's when absent. The Gateway's listener must allow routes from this namespace.
   */
  namespace?: string;
  /**
   * Listener name on the Gateway; all listeners that allow the route when absent.
   */
  sectionName?: string;
}

/**
 * A candidate version served beside spec.model by its own pods. trafficPercent of live requests are answered by it (needs spec.gateway); mirrorPercent of the stable version's requests are also sent to it as a copy, its answers compared with the stable ones and discarded. fnolctl promote --mirror/--canary steps through both and moves the candidate into spec.model.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecCanaryInput.
 */
export interface FnolModelSpecCanary {
  /**
   * The candidate's compiled ONNX model; same fields and checks as spec.model (its sha256 is verified before any candidate pod starts).
   */
  model: FnolModelSpecCanaryModel;
  /**
   * Share of live requests answered by the candidate, in percent (HTTPRoute weights; needs spec.gateway).
   */
  trafficPercent: number;
  /**
   * Share of the stable version's requests also sent, as a copy, to the candidate by the stable pods after they answered; the candidate's answers are compared and discarded, never returned.
   */
  mirrorPercent: number;
  /**
   * Candidate pods. Default, enough for its share - ceil(stable replicas x max(trafficPercent, mirrorPercent) / 100), at least 1.
   */
  replicas?: number;
}

/**
 * The candidate's compiled ONNX model; same fields and checks as spec.model (its sha256 is verified before any candidate pod starts).
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecCanaryModelInput.
 */
export interface FnolModelSpecCanaryModel {
  /**
   * Model version; must equal the version in the ONNX metadata. Becomes a label value, so letters, digits, '.', '_' and '-' only.
   */
  version: string;
  /**
   * Where the scorer fetches the model from (https://, http:// or file://). Never put credentials in it; use credentialsSecretRef.
   */
  uri: string;
  /**
   * SHA-256 of the model file, 64 lower-case hex characters. The operator and the scorer refuse a file with another digest.
   */
  sha256: string;
  /**
   * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
   */
  credentialsSecretRef?: FnolModelSpecCanaryModelCredentialsSecretRef;
}

/**
 * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecCanaryModelCredentialsSecretRefInput.
 */
export interface FnolModelSpecCanaryModelCredentialsSecretRef {
  /**
   * Secret name (DNS-1123 subdomain).
   */
  name: string;
  /**
   * Key in the Secret holding the SAS token.
   */
  key: string;
}

/**
 * Expose the scorer through an Ingress. Without it the model is reachable in the cluster only (status.url is the Service URL).
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecIngressInput.
 */
export interface FnolModelSpecIngress {
  /**
   * Fully qualified host name (DNS-1123 subdomain, no wildcard).
   */
  host: string;
  /**
   * Path prefix routed to the scorer.
   */
  path: string;
  /**
   * IngressClass name; the cluster default when absent.
   */
  className?: string;
  /**
   * Secret of type kubernetes.io/tls for the host; the URL is https:// when set.
   */
  tlsSecretName?: string;
}

export interface FnolModelSpecTolerationsItem {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

/**
 * Scorer container resources (standard Kubernetes requests and limits).
 */
export interface FnolModelSpecResources {
  requests?: Record<string, number | string>;
  limits?: Record<string, number | string>;
}

/**
 * When set, a HorizontalPodAutoscaler scales the scorer between minReplicas and maxReplicas on CPU.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecAutoscalingInput.
 */
export interface FnolModelSpecAutoscaling {
  minReplicas: number;
  maxReplicas: number;
  targetCPUUtilizationPercentage: number;
}

/**
 * The compiled ONNX model to serve.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecModelInput.
 */
export interface FnolModelSpecModel {
  /**
   * Fetch the model with an Azure AD workload identity instead of a SAS token. The scorer pods (stable and canary) run as serviceAccountName with the label azure.workload.identity/use=true, so the AKS webhook projects a federated token that the scorer exchanges for a storage access token. The ServiceAccount is created by the namespace admin with the annotation azure.workload.identity/client-id; the managed identity needs a federated credential for it and the Storage Blob Data Reader role on the model's container (docs/install-aks.md).
   */
  identity?: FnolModelSpecModelIdentity;
  /**
   * Model version; must equal the version in the ONNX metadata. Becomes a label value, so letters, digits, '.', '_' and '-' only.
   */
  version: string;
  /**
   * Where the scorer fetches the model from (https://, http:// or file://). Never put credentials in it; use credentialsSecretRef.
   */
  uri: string;
  /**
   * SHA-256 of the model file, 64 lower-case hex characters. The operator and the scorer refuse a file with another digest.
   */
  sha256: string;
  /**
   * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
   */
  credentialsSecretRef?: FnolModelSpecModelCredentialsSecretRef;
}

/**
 * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
 *
 * As read from the API server: fields the CRD defaults are present. Written as FnolModelSpecModelCredentialsSecretRefInput.
 */
export interface FnolModelSpecModelCredentialsSecretRef {
  /**
   * Secret name (DNS-1123 subdomain).
   */
  name: string;
  /**
   * Key in the Secret holding the SAS token.
   */
  key: string;
}

/**
 * Fetch the model with an Azure AD workload identity instead of a SAS token. The scorer pods (stable and canary) run as serviceAccountName with the label azure.workload.identity/use=true, so the AKS webhook projects a federated token that the scorer exchanges for a storage access token. The ServiceAccount is created by the namespace admin with the annotation azure.workload.identity/client-id; the managed identity needs a federated credential for it and the Storage Blob Data Reader role on the model's container (docs/install-aks.md).
 */
export interface FnolModelSpecModelIdentity {
  /**
   * The kind of identity; only WorkloadIdentity today.
   */
  type: 'WorkloadIdentity';
  /**
   * ServiceAccount in the FnolModel's namespace the scorer pods run as (DNS-1123 subdomain). The operator does not create or change it.
   */
  serviceAccountName: string;
  /**
   * Client ID (a GUID) of the managed identity to use, in place of the ServiceAccount's azure.workload.identity/client-id annotation. The token exchange still succeeds only if that identity has a federated credential for this ServiceAccount.
   */
  clientId?: string;
}

/**
 * What to serve and how.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpec.
 */
export interface FnolModelSpecInput {
  /**
   * The compiled ONNX model to serve.
   */
  model: FnolModelSpecModelInput;
  /**
   * Name of the model in the ONNX metadata (its name entry). The scorer refuses to serve a file with another name, answers with it in model and model_name, and serves the v2 paths /v2/models/{modelName}. Lower case letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 63 characters.
   */
  modelName?: string;
  /**
   * Scorer container image. Defaults to the operator's configured scorer image.
   */
  image?: string;
  /**
   * Number of scorer pods. Ignored when autoscaling is set.
   */
  replicas?: number;
  /**
   * When set, a HorizontalPodAutoscaler scales the scorer between minReplicas and maxReplicas on CPU.
   */
  autoscaling?: FnolModelSpecAutoscalingInput;
  /**
   * Scorer container resources (standard Kubernetes requests and limits).
   */
  resources?: FnolModelSpecResources;
  /**
   * Node labels the scorer pods must run on (standard pod nodeSelector), e.g. a dedicated node pool.
   */
  nodeSelector?: Record<string, string>;
  /**
   * Taints the scorer pods tolerate (standard pod tolerations), e.g. of a dedicated node pool.
   */
  tolerations?: Array<FnolModelSpecTolerationsItem>;
  /**
   * Expose the scorer through an Ingress. Without it the model is reachable in the cluster only (status.url is the Service URL).
   */
  ingress?: FnolModelSpecIngressInput;
  /**
   * A candidate version served beside spec.model by its own pods. trafficPercent of live requests are answered by it (needs spec.gateway); mirrorPercent of the stable version's requests are also sent to it as a copy, its answers compared with the stable ones and discarded. fnolctl promote --mirror/--canary steps through both and moves the candidate into spec.model.
   */
  canary?: FnolModelSpecCanaryInput;
  /**
   * Expose the scorer through a Gateway API HTTPRoute attached to an existing Gateway. Needed for spec.canary.trafficPercent (weighted backends). May be set together with spec.ingress.
   */
  gateway?: FnolModelSpecGatewayInput;
  /**
   * Require an API key or an OIDC bearer token (Entra ID) on scoring requests. With both, either is accepted.
   */
  auth?: FnolModelSpecAuth;
  /**
   * Payload logging for audit and retraining. Each sampled scoring request is written with its inputs (by feature name, redacted fields hashed or left out) and predictions, asynchronously; a full buffer or a failing sink drops records (counted in scorer_payload_log_dropped_total), never requests. Off without this field. See docs/payload-logging.md.
   */
  logging?: FnolModelSpecLoggingInput;
  /**
   * Monitoring settings of this model's scorer pods. Where traces are exported is not set here but by the cluster admin on the operator (docs/operations.md, Tracing).
   */
  monitoring?: FnolModelSpecMonitoring;
}

/**
 * Payload logging for audit and retraining. Each sampled scoring request is written with its inputs (by feature name, redacted fields hashed or left out) and predictions, asynchronously; a full buffer or a failing sink drops records (counted in scorer_payload_log_dropped_total), never requests. Off without this field. See docs/payload-logging.md.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecLogging.
 */
export interface FnolModelSpecLoggingInput {
  /**
   * Share of answered scoring requests logged, from 0 (off) to 1 (all).
   */
  sampleRate: number;
  /**
   * Where the records go.
   */
  sink?: FnolModelSpecLoggingSinkInput;
  /**
   * Which input fields are not logged as sent. Free-text features (string features without a list of categories in the model contract) are redacted unless freeText is false.
   */
  redact?: FnolModelSpecLoggingRedactInput;
}

/**
 * Which input fields are not logged as sent. Free-text features (string features without a list of categories in the model contract) are redacted unless freeText is false.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecLoggingRedact.
 */
export interface FnolModelSpecLoggingRedactInput {
  /**
   * Feature names to redact (besides free text). The scorer drops every sampled record when one is not a feature of the served model, rather than log it unredacted.
   */
  fields?: Array<string>;
  /**
   * drop leaves the field out; hash writes hmac-sha256:HEX, keyed with hashKeySecretRef (equal values stay joinable, the value cannot be read back).
   */
  mode?: 'drop' | 'hash';
  /**
   * Also redact every free-text feature.
   */
  freeText?: boolean;
  /**
   * Secret holding the hashing key (at least 16 bytes), labelled serving.fnol.io/model-credentials "true". Mounted read-only into the scorer.
   */
  hashKeySecretRef?: FnolModelSpecLoggingRedactHashKeySecretRefInput;
}

/**
 * Secret holding the hashing key (at least 16 bytes), labelled serving.fnol.io/model-credentials "true". Mounted read-only into the scorer.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecLoggingRedactHashKeySecretRef.
 */
export interface FnolModelSpecLoggingRedactHashKeySecretRefInput {
  name: string;
  /**
   * Key in the Secret holding the hashing key.
   */
  key?: string;
}

/**
 * Where the records go.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecLoggingSink.
 */
export interface FnolModelSpecLoggingSinkInput {
  /**
   * stdout (JSON Lines on the scorer's standard output, for the cluster's log collector) or blob (Azure Blob Storage, one Append Blob per pod per time window).
   */
  type?: 'stdout' | 'blob';
  blob?: FnolModelSpecLoggingSinkBlobInput;
}

/**
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecLoggingSinkBlob.
 */
export interface FnolModelSpecLoggingSinkBlobInput {
  /**
   * https://ACCOUNT.blob.core.windows.net/CONTAINER. Its host must be on the operator's MODEL_ALLOWED_HOSTS, like model URIs. No query string; the SAS token goes in the Secret.
   */
  containerUrl: string;
  /**
   * Secret in the same namespace holding a SAS token with add, create and write permissions on the container. It must be labelled serving.fnol.io/model-credentials "true", like model credentials. Mounted read-only into the scorer.
   */
  credentialsSecretRef: FnolModelSpecLoggingSinkBlobCredentialsSecretRefInput;
}

/**
 * Secret in the same namespace holding a SAS token with add, create and write permissions on the container. It must be labelled serving.fnol.io/model-credentials "true", like model credentials. Mounted read-only into the scorer.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecLoggingSinkBlobCredentialsSecretRef.
 */
export interface FnolModelSpecLoggingSinkBlobCredentialsSecretRefInput {
  name: string;
  /**
   * Key in the Secret holding the SAS token.
   */
  key?: string;
}

/**
 * Expose the scorer through a Gateway API HTTPRoute attached to an existing Gateway. Needed for spec.canary.trafficPercent (weighted backends). May be set together with spec.ingress.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecGateway.
 */
export interface FnolModelSpecGatewayInput {
  /**
   * The Gateway the HTTPRoute attaches to.
   */
  parentRef: FnolModelSpecGatewayParentRef;
  /**
   * Host names the route matches (DNS-1123 subdomains); every host of the Gateway's listener when empty.
   */
  hostnames?: Array<string>;
  /**
   * Path prefix routed to the scorer.
   */
  path?: string;
}

/**
 * A candidate version served beside spec.model by its own pods. trafficPercent of live requests are answered by it (needs spec.gateway); mirrorPercent of the stable version's requests are also sent to it as a copy, its answers compared with the stable ones and discarded. fnolctl promote --mirror/--canary steps through both and moves the candidate into spec.model.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecCanary.
 */
export interface FnolModelSpecCanaryInput {
  /**
   * The candidate's compiled ONNX model; same fields and checks as spec.model (its sha256 is verified before any candidate pod starts).
   */
  model: FnolModelSpecCanaryModelInput;
  /**
   * Share of live requests answered by the candidate, in percent (HTTPRoute weights; needs spec.gateway).
   */
  trafficPercent?: number;
  /**
   * Share of the stable version's requests also sent, as a copy, to the candidate by the stable pods after they answered; the candidate's answers are compared and discarded, never returned.
   */
  mirrorPercent?: number;
  /**
   * Candidate pods. Default, enough for its share - ceil(stable replicas x max(trafficPercent, mirrorPercent) / 100), at least 1.
   */
  replicas?: number;
}

/**
 * The candidate's compiled ONNX model; same fields and checks as spec.model (its sha256 is verified before any candidate pod starts).
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecCanaryModel.
 */
export interface FnolModelSpecCanaryModelInput {
  /**
   * Model version; must equal the version in the ONNX metadata. Becomes a label value, so letters, digits, '.', '_' and '-' only.
   */
  version: string;
  /**
   * Where the scorer fetches the model from (https://, http:// or file://). Never put credentials in it; use credentialsSecretRef.
   */
  uri: string;
  /**
   * SHA-256 of the model file, 64 lower-case hex characters. The operator and the scorer refuse a file with another digest.
   */
  sha256: string;
  /**
   * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
   */
  credentialsSecretRef?: FnolModelSpecCanaryModelCredentialsSecretRefInput;
}

/**
 * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecCanaryModelCredentialsSecretRef.
 */
export interface FnolModelSpecCanaryModelCredentialsSecretRefInput {
  /**
   * Secret name (DNS-1123 subdomain).
   */
  name: string;
  /**
   * Key in the Secret holding the SAS token.
   */
  key?: string;
}

/**
 * Expose the scorer through an Ingress. Without it the model is reachable in the cluster only (status.url is the Service URL).
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecIngress.
 */
export interface FnolModelSpecIngressInput {
  /**
   * Fully qualified host name (DNS-1123 subdomain, no wildcard).
   */
  host: string;
  /**
   * Path prefix routed to the scorer.
   */
  path?: string;
  /**
   * IngressClass name; the cluster default when absent.
   */
  className?: string;
  /**
   * Secret of type kubernetes.io/tls for the host; the URL is https:// when set.
   */
  tlsSecretName?: string;
}

/**
 * When set, a HorizontalPodAutoscaler scales the scorer between minReplicas and maxReplicas on CPU.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecAutoscaling.
 */
export interface FnolModelSpecAutoscalingInput {
  minReplicas?: number;
  maxReplicas: number;
  targetCPUUtilizationPercentage?: number;
}

/**
 * The compiled ONNX model to serve.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecModel.
 */
export interface FnolModelSpecModelInput {
  /**
   * Fetch the model with an Azure AD workload identity instead of a SAS token. The scorer pods (stable and canary) run as serviceAccountName with the label azure.workload.identity/use=true, so the AKS webhook projects a federated token that the scorer exchanges for a storage access token. The ServiceAccount is created by the namespace admin with the annotation azure.workload.identity/client-id; the managed identity needs a federated credential for it and the Storage Blob Data Reader role on the model's container (docs/install-aks.md).
   */
  identity?: FnolModelSpecModelIdentity;
  /**
   * Model version; must equal the version in the ONNX metadata. Becomes a label value, so letters, digits, '.', '_' and '-' only.
   */
  version: string;
  /**
   * Where the scorer fetches the model from (https://, http:// or file://). Never put credentials in it; use credentialsSecretRef.
   */
  uri: string;
  /**
   * SHA-256 of the model file, 64 lower-case hex characters. The operator and the scorer refuse a file with another digest.
   */
  sha256: string;
  /**
   * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
   */
  credentialsSecretRef?: FnolModelSpecModelCredentialsSecretRefInput;
}

/**
 * Secret in the same namespace holding what the scorer needs to fetch the model (key sasToken, an Azure SAS token). Mounted read-only into the scorer; never copied into the FnolModel.
 *
 * As written: fields the CRD defaults may be left out. Read back as FnolModelSpecModelCredentialsSecretRef.
 */
export interface FnolModelSpecModelCredentialsSecretRefInput {
  /**
   * Secret name (DNS-1123 subdomain).
   */
  name: string;
  /**
   * Key in the Secret holding the SAS token.
   */
  key?: string;
}

/**
 * Observed state, written by the operator only.
 */
export interface FnolModelStatus {
  /**
   * The metadata.generation this status describes.
   */
  observedGeneration?: number;
  /**
   * Summary of the conditions.
   */
  phase?: 'Pending' | 'Progressing' | 'Ready' | 'Degraded';
  /**
   * Model version that every ready scorer pod serves; absent while none is ready or while two versions serve together.
   */
  activeVersion?: string;
  readyReplicas?: number;
  /**
   * Scorer pods that exist (scale subresource).
   */
  replicas?: number;
  /**
   * Label selector of the scorer pods (scale subresource).
   */
  selector?: string;
  /**
   * Where consumers call the scorer.
   */
  url?: string;
  /**
   * The candidate of spec.canary as observed; absent without spec.canary.
   */
  canary?: FnolModelStatusCanary;
  conditions?: Array<FnolModelStatusConditionsItem>;
}

export interface FnolModelStatusConditionsItem {
  type: 'Ready' | 'Progressing' | 'Degraded' | 'CanaryReady';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/**
 * The candidate of spec.canary as observed; absent without spec.canary.
 */
export interface FnolModelStatusCanary {
  version?: string;
  readyReplicas?: number;
  /**
   * Share of live requests the HTTPRoute sends to the candidate, as applied (0 until the candidate has ready pods).
   */
  trafficPercent?: number;
  /**
   * Share of the stable version's requests copied to the candidate, as applied.
   */
  mirrorPercent?: number;
  /**
   * Candidate against stable on the mirrored copies of the same requests, summed over the stable pods since the stable pods started mirroring to this candidate version.
   */
  comparison?: FnolModelStatusCanaryComparison;
}

/**
 * Candidate against stable on the mirrored copies of the same requests, summed over the stable pods since the stable pods started mirroring to this candidate version.
 */
export interface FnolModelStatusCanaryComparison {
  /**
   * Requests answered by both and compared.
   */
  requests?: number;
  /**
   * Copies not sent because the mirror queue was full (the caller was never delayed).
   */
  dropped?: number;
  /**
   * Copies the candidate failed to answer (error status, timeout, connection error).
   */
  candidateErrors?: number;
  /**
   * candidateErrors / (requests + candidateErrors).
   */
  candidateErrorRate?: number;
  stableLatencyP99Seconds?: number;
  candidateLatencyP99Seconds?: number;
  outputs?: Array<FnolModelStatusCanaryComparisonOutputsItem>;
  /**
   * Stable pods whose figures are included.
   */
  pods?: number;
  updatedAt?: string;
}

export interface FnolModelStatusCanaryComparisonOutputsItem {
  name: string;
  /**
   * Median over compared records of |candidate - stable| / max(|stable|, 1).
   */
  medianRelativeDifference?: number;
  p95RelativeDifference?: number;
  /**
   * The relative difference counted as a disagreement (the scorer's SHADOW_DIFF_THRESHOLD).
   */
  threshold?: number;
  /**
   * Share of compared records whose relative difference exceeds threshold.
   */
  exceedingShare?: number;
}
