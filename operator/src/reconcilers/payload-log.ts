/**
 * The scorer pods' payload logging (spec.logging): PAYLOAD_LOG_* environment
 * and the Secrets it reads, mounted read-only. The Secrets are mounted only once
 * the controller found them marked for the scorer (the model-credentials label)
 * and the container's host on MODEL_ALLOWED_HOSTS; a refused spec.logging keeps
 * the Deployment as it is. Egress to the container needs no rule of its own:
 * its host is one of the model store's, which the NetworkPolicy already allows.
 */
import type { V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';

export const PAYLOAD_LOG_CREDENTIALS_DIR = '/var/run/secrets/fnol/payload-log';
export const PAYLOAD_LOG_HASH_KEY_DIR = '/var/run/secrets/fnol/payload-log-hash-key';

export type LoggingSpec = NonNullable<FnolModel['spec']['logging']>;

export interface PodPayloadLog {
  readonly env: V1EnvVar[];
  readonly volumes: V1Volume[];
  readonly mounts: V1VolumeMount[];
}

/** What spec.logging adds to a scorer pod; nothing without it or at rate 0. */
export function payloadLogPod(fm: FnolModel): PodPayloadLog {
  const logging = fm.spec.logging;
  const none: PodPayloadLog = { env: [], volumes: [], mounts: [] };
  if (!logging || !(logging.sampleRate > 0)) return none;
  const env: V1EnvVar[] = [
    { name: 'PAYLOAD_LOG_SAMPLE_RATE', value: String(logging.sampleRate) },
    // Part of each blob's name: pods never write to the same blob.
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  ];
  const volumes: V1Volume[] = [];
  const mounts: V1VolumeMount[] = [];
  const blob = logging.sink?.type === 'blob' ? logging.sink.blob : undefined;
  if (blob) {
    const key = blob.credentialsSecretRef.key ?? 'sasToken';
    env.push(
      { name: 'PAYLOAD_LOG_SINK', value: 'blob' },
      { name: 'PAYLOAD_LOG_CONTAINER_URL', value: blob.containerUrl },
      { name: 'PAYLOAD_LOG_SAS_TOKEN_FILE', value: `${PAYLOAD_LOG_CREDENTIALS_DIR}/sasToken` },
    );
    volumes.push({
      name: 'payload-log-credentials',
      secret: {
        secretName: blob.credentialsSecretRef.name,
        items: [{ key, path: 'sasToken' }],
        defaultMode: 0o440,
      },
    });
    mounts.push({ name: 'payload-log-credentials', mountPath: PAYLOAD_LOG_CREDENTIALS_DIR, readOnly: true });
  } else {
    env.push({ name: 'PAYLOAD_LOG_SINK', value: 'stdout' });
  }
  const redact = logging.redact;
  if (redact?.fields?.length) env.push({ name: 'PAYLOAD_LOG_REDACT_FIELDS', value: redact.fields.join(',') });
  env.push(
    { name: 'PAYLOAD_LOG_REDACT_MODE', value: redact?.mode ?? 'drop' },
    { name: 'PAYLOAD_LOG_REDACT_FREE_TEXT', value: String(redact?.freeText ?? true) },
  );
  const hashKey = redact?.hashKeySecretRef;
  if (hashKey) {
    volumes.push({
      name: 'payload-log-hash-key',
      secret: {
        secretName: hashKey.name,
        items: [{ key: hashKey.key ?? 'hashKey', path: 'hashKey' }],
        defaultMode: 0o440,
      },
    });
    mounts.push({ name: 'payload-log-hash-key', mountPath: PAYLOAD_LOG_HASH_KEY_DIR, readOnly: true });
    env.push({ name: 'PAYLOAD_LOG_HASH_KEY_FILE', value: `${PAYLOAD_LOG_HASH_KEY_DIR}/hashKey` });
  }
  return { env, volumes, mounts };
}

/** The Secrets spec.logging names, with the field that names each (for messages). */
export function payloadLogSecrets(fm: FnolModel): { name: string; field: string }[] {
  const logging = fm.spec.logging;
  if (!logging || !(logging.sampleRate > 0)) return [];
  const secrets: { name: string; field: string }[] = [];
  if (logging.sink?.type === 'blob' && logging.sink.blob) {
    secrets.push({
      name: logging.sink.blob.credentialsSecretRef.name,
      field: 'spec.logging.sink.blob.credentialsSecretRef',
    });
  }
  if (logging.redact?.hashKeySecretRef) {
    secrets.push({
      name: logging.redact.hashKeySecretRef.name,
      field: 'spec.logging.redact.hashKeySecretRef',
    });
  }
  return secrets;
}
