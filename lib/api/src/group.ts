/**
 * The FnolModel API's names: group, version, kind, and the labels and
 * annotations that other programs read. The one place these strings live in
 * code (the CRD, manifests and YAML fixtures spell them too).
 */
export const GROUP = 'serving.fnol.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'FnolModel';
export const LIST_KIND = 'FnolModelList';
export const PLURAL = 'fnolmodels';
export const SINGULAR = 'fnolmodel';
/** The CRD's metadata.name. */
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** Labels set on every object the operator owns. */
export const Labels = {
  /** The FnolModel an object serves. */
  model: `${GROUP}/model`,
  /** The model version a pod template serves. */
  modelVersion: `${GROUP}/model-version`,
  /**
   * Marks a Secret as usable by spec.model.credentialsSecretRef. Without it
   * the operator neither reads the token nor lets a scorer mount the Secret.
   */
  modelCredentials: `${GROUP}/model-credentials`,
  /** Which of a FnolModel's two versions a pod serves: "stable" (spec.model) or "canary" (spec.canary.model). */
  track: `${GROUP}/track`,
} as const;

/** Values of Labels.track. */
export const Tracks = { stable: 'stable', canary: 'canary' } as const;
export type Track = (typeof Tracks)[keyof typeof Tracks];

/** Name of the candidate's Deployment and Service: the FnolModel's name plus this suffix. */
export const CANARY_SUFFIX = '-canary';
export function canaryName(fnolModelName: string): string {
  return `${fnolModelName}${CANARY_SUFFIX}`;
}

/** Annotations the operator and fnolctl write. */
export const Annotations = {
  modelSha256: `${GROUP}/model-sha256`,
  modelUri: `${GROUP}/model-uri`,
  /** Hash of the last applied desired state, so unchanged objects are not re-applied. */
  appliedHash: `${GROUP}/applied-hash`,
  /** The spec.model that a promotion replaced (what rollback restores). */
  previousModel: `${GROUP}/previous-model`,
  /**
   * The last promotion made with a promotion id (a pipeline run): what it
   * replaced, what it applied and whether it was already undone.
   */
  promotion: `${GROUP}/promotion`,
} as const;
