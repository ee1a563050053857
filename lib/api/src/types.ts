import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { FnolModelSpec, FnolModelSpecInput, FnolModelStatus } from './types.generated';

export * from './types.generated';

/** A FnolModel as read from the API server (defaults from the CRD applied). */
export interface FnolModel {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: FnolModelSpec;
  status?: FnolModelStatus;
}

/** A FnolModel as a user or client writes it: fields the CRD defaults may be left out. */
export interface FnolModelInput {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string; namespace?: string };
  spec: FnolModelSpecInput;
}

/** CanaryReady is set only while spec.canary is: the candidate's own state, apart from Ready (the stable version's). */
export type ConditionType = 'Ready' | 'Progressing' | 'Degraded' | 'CanaryReady';
export type Phase = 'Pending' | 'Progressing' | 'Ready' | 'Degraded';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** Condition reasons the operator sets; documented in docs/crd-reference.md. */
export const Reasons = {
  RolloutComplete: 'RolloutComplete',
  RollingOut: 'RollingOut',
  WaitingForPods: 'WaitingForPods',
  PreviousVersionServing: 'PreviousVersionServing',
  ModelDigestMismatch: 'ModelDigestMismatch',
  ModelUnreachable: 'ModelUnreachable',
  /** spec.model.credentialsSecretRef names a Secret without the model-credentials label. */
  CredentialsSecretNotAllowed: 'CredentialsSecretNotAllowed',
  /** spec.model.uri names a host off MODEL_ALLOWED_HOSTS, or plain http outside local mode. */
  ModelHostNotAllowed: 'ModelHostNotAllowed',
  /** spec.auth.oidc names a plain http issuer or key set outside local mode. */
  OidcIssuerNotAllowed: 'OidcIssuerNotAllowed',
  /** spec.logging names a blob container off MODEL_ALLOWED_HOSTS, or a Secret that does not exist. */
  PayloadLogSinkNotAllowed: 'PayloadLogSinkNotAllowed',
  /** The model is being downloaded to check its sha256 before the rollout. */
  VerifyingModel: 'VerifyingModel',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  NoReadyReplicas: 'NoReadyReplicas',
  ScaledToZero: 'ScaledToZero',
  ApplyFailed: 'ApplyFailed',
  AsExpected: 'AsExpected',
  /** The candidate of spec.canary is ready and receives its traffic and mirror shares. */
  CanaryServing: 'CanaryServing',
  /** The candidate's Deployment is rolling out (no ready pod yet, or not all updated). */
  CanaryRollingOut: 'CanaryRollingOut',
  /** The stable pods are being restarted with the mirror settings (SHADOW_*). */
  MirrorRollingOut: 'MirrorRollingOut',
  /** The candidate's Deployment exceeded its progress deadline, or its pods all went away. */
  CanaryFailed: 'CanaryFailed',
  /** spec.gateway is set but the cluster has no Gateway API CRDs (HTTPRoute). */
  GatewayAPIMissing: 'GatewayAPIMissing',
} as const;
