// Callers authenticated with OpenID Connect bearer tokens (Entra ID access
// tokens): the signature is checked against the issuer's JSON Web Key Set,
// fetched on first use, kept for a while, and fetched again when a token names a
// key it does not hold (key rotation), at most once per cool-down. Then the
// issuer, the audience, expiry and not-before (with a small clock skew) and the
// required app roles. Only asymmetric algorithms are accepted, so neither an
// unsigned token (alg none) nor one signed with a public key as an HMAC secret
// passes. Nothing about a token is logged.

import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { HttpError } from './http-errors';

export interface OidcConfig {
  /** The `iss` every token must carry, exactly. */
  readonly issuer: string;
  /** Accepted `aud` values; a token must name at least one. */
  readonly audiences: readonly string[];
  /** App roles every token must carry in its `roles` claim (none: any caller of the audience). */
  readonly requiredRoles: readonly string[];
  /** Where the issuer's signing keys are published. */
  readonly jwksUri: URL;
  readonly clockSkewSeconds: number;
  /** How long a fetched key set is used before it is fetched again. */
  readonly jwksCacheSeconds: number;
  /** Least time between two fetches of the key set for unknown key ids. */
  readonly jwksCooldownSeconds: number;
}

/** Signature algorithms accepted: asymmetric only. */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
];

const REALM = 'fnol-scorer';

/** RFC 6750 §3: the challenge for a refused bearer token. */
export function bearerChallenge(
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope',
  description?: string,
): string {
  const parts = [`realm="${REALM}"`];
  if (error !== undefined) parts.push(`error="${error}"`);
  // error_description is limited to printable ASCII without " and \ (RFC 6750 §3).
  if (description !== undefined)
    parts.push(`error_description="${description.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '')}"`);
  return `Bearer ${parts.join(', ')}`;
}

function refused(
  status: 401 | 403,
  error: 'invalid_token' | 'insufficient_scope',
  description: string,
): HttpError {
  return new HttpError(status, `bearer token refused: ${description}`, undefined, {
    'www-authenticate': bearerChallenge(error, description),
  });
}

/** Three base64url segments: what a JWT looks like (an API key sent as a bearer does not). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export class OidcVerifier {
  private readonly keys: ReturnType<typeof createRemoteJWKSet>;

  constructor(readonly config: OidcConfig) {
    this.keys = createRemoteJWKSet(config.jwksUri, {
      cacheMaxAge: config.jwksCacheSeconds * 1000,
      cooldownDuration: config.jwksCooldownSeconds * 1000,
      timeoutDuration: 5000,
    });
  }

  /** Resolves with the token's claims, or rejects with the HttpError to answer (401, 403 or 503). */
  async verify(token: string): Promise<JWTPayload> {
    const { config } = this;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: config.issuer,
        audience: [...config.audiences],
        algorithms: OIDC_ALGORITHMS,
        clockTolerance: config.clockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw explain(error);
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r) => typeof r === 'string') : [];
    const missing = config.requiredRoles.filter((role) => !roles.includes(role));
    if (missing.length > 0) {
      throw refused(
        403,
        'insufficient_scope',
        `the token lacks the app role ${missing.join(', ')}; ask for the role to be assigned to the caller`,
      );
    }
    return payload;
  }
}

/** What was wrong with the token, for the caller; never the token itself. */
function explain(error: unknown): HttpError {
  if (error instanceof errors.JWTExpired)
    return refused(401, 'invalid_token', 'the token has expired; get a new one');
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss':
        return refused(401, 'invalid_token', 'the token is from an issuer this model does not accept');
      case 'aud':
        return refused(
          401,
          'invalid_token',
          "the token's audience is not this model's; request a token for its audience",
        );
      case 'nbf':
        return refused(401, 'invalid_token', 'the token is not valid yet');
      default:
        return refused(401, 'invalid_token', `the token's ${error.claim} claim is missing or invalid`);
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return refused(401, 'invalid_token', 'the token is not signed with an accepted asymmetric algorithm');
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return refused(401, 'invalid_token', 'the token is signed with a key the issuer does not publish');
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return refused(401, 'invalid_token', 'the token signature is invalid');
  }
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || isFetchFailure(error)) {
    return new HttpError(
      503,
      "the issuer's signing keys cannot be fetched now; try again shortly",
      undefined,
      {
        'retry-after': '5',
      },
    );
  }
  return refused(401, 'invalid_token', 'the token is not a valid signed JWT');
}

function isFetchFailure(error: unknown): boolean {
  // jose reports an answer other than 200 from the key set URI as a JOSEError with this code.
  return (error as { code?: unknown }).code === 'ERR_JOSE_GENERIC' || error instanceof TypeError;
}
