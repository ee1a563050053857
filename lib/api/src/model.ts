/**
 * What identifies a model version, and the one rule for "the same model",
 * shared by the operator (is the Deployment serving spec.model?) and fnolctl
 * (would this promotion change anything?).
 */
import type { FnolModelSpecModelInput } from './types.generated';

/** The parts of spec.model that name the bytes served: version, where, and their digest. */
export type ModelIdentity = Pick<FnolModelSpecModelInput, 'version' | 'uri' | 'sha256'>;

/**
 * Two models are the same when version, URI and sha256 all match. How the
 * bytes are fetched (credentialsSecretRef) is not part of a model's identity;
 * compare it with sameCredentials where it matters.
 */
export function sameModel(a: ModelIdentity | undefined, b: ModelIdentity | undefined): boolean {
  return !!a && !!b && a.version === b.version && a.uri === b.uri && a.sha256 === b.sha256;
}

/**
 * Same credentials Secret reference (both absent counts as the same). Takes
 * either view: a reference written without its key differs from one read back
 * with the defaulted key, so a promotion that names the key re-applies.
 */
export function sameCredentials(
  a: Pick<FnolModelSpecModelInput, 'credentialsSecretRef'>,
  b: Pick<FnolModelSpecModelInput, 'credentialsSecretRef'>,
): boolean {
  const ra = a.credentialsSecretRef;
  const rb = b.credentialsSecretRef;
  if (!ra || !rb) return !ra && !rb;
  return ra.name === rb.name && (ra.key ?? null) === (rb.key ?? null);
}

/**
 * The same spec.model: the same model fetched the same way. fnolctl's promote
 * uses it to decide that a promotion would change nothing.
 */
export function sameModelSpec(a: FnolModelSpecModelInput, b: FnolModelSpecModelInput): boolean {
  return sameModel(a, b) && sameCredentials(a, b);
}
