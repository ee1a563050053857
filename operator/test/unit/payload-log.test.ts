import { strict as assert } from 'node:assert';
import type { V1Container } from '@kubernetes/client-node';
import { desiredCanaryDeployment, desiredDeployment } from '../../src/reconcilers/deployment';
import {
  PAYLOAD_LOG_CREDENTIALS_DIR,
  PAYLOAD_LOG_HASH_KEY_DIR,
  payloadLogSecrets,
} from '../../src/reconcilers/payload-log';
import { fnolModel, testConfig } from '../fixtures';

function scorer(c: V1Container[] | undefined): V1Container {
  const s = c?.find((x) => x.name === 'scorer');
  assert.ok(s, 'no scorer container');
  return s;
}

const env = (c: V1Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

const blobLogging = {
  sampleRate: 0.25,
  sink: {
    type: 'blob' as const,
    blob: {
      containerUrl: 'https://logs.blob.core.windows.net/payload-logs',
      credentialsSecretRef: { name: 'payload-log-sas', key: 'token' },
    },
  },
  redact: {
    fields: ['Location_of_incident', 'Main_driver'],
    mode: 'hash' as const,
    freeText: true,
    hashKeySecretRef: { name: 'payload-log-key', key: 'hashKey' },
  },
};

describe('reconcilers/payload-log', () => {
  it('adds nothing without spec.logging, or at sampleRate 0', () => {
    for (const fm of [fnolModel(), fnolModel({ logging: { sampleRate: 0 } })]) {
      const pod = desiredDeployment(fm, testConfig).spec?.template.spec;
      const e = env(scorer(pod?.containers));
      assert.deepEqual(
        Object.keys(e).filter((k) => k.startsWith('PAYLOAD_LOG_')),
        [],
      );
      assert.ok(!pod?.volumes?.some((v) => v.name.startsWith('payload-log')));
      assert.deepEqual(payloadLogSecrets(fm), []);
    }
  });

  it('logs to stdout with free text dropped by default', () => {
    const c = scorer(
      desiredDeployment(fnolModel({ logging: { sampleRate: 1 } }), testConfig).spec?.template.spec
        ?.containers,
    );
    const e = env(c);
    assert.equal(e.PAYLOAD_LOG_SAMPLE_RATE, '1');
    assert.equal(e.PAYLOAD_LOG_SINK, 'stdout');
    assert.equal(e.PAYLOAD_LOG_REDACT_MODE, 'drop');
    assert.equal(e.PAYLOAD_LOG_REDACT_FREE_TEXT, 'true');
    assert.equal(e.PAYLOAD_LOG_CONTAINER_URL, undefined);
    // Each pod writes its own blobs: its name comes from the downward API.
    assert.deepEqual(c.env?.find((v) => v.name === 'POD_NAME')?.valueFrom, {
      fieldRef: { fieldPath: 'metadata.name' },
    });
  });

  it('mounts the blob SAS token and the hashing key read-only, naming files, never values', () => {
    const fm = fnolModel({ logging: blobLogging });
    for (const d of [
      desiredDeployment(fm, testConfig),
      desiredCanaryDeployment(
        fnolModel({
          logging: blobLogging,
          canary: {
            model: {
              version: '2.0.0',
              uri: 'https://models.example.test/fnol/fnol-2.0.0.onnx',
              sha256: 'b'.repeat(64),
            },
            trafficPercent: 0,
            mirrorPercent: 0,
          },
        }),
        testConfig,
      ),
    ]) {
      const pod = d?.spec?.template.spec;
      const c = scorer(pod?.containers);
      const e = env(c);
      assert.equal(e.PAYLOAD_LOG_SINK, 'blob');
      assert.equal(e.PAYLOAD_LOG_CONTAINER_URL, 'https://logs.blob.core.windows.net/payload-logs');
      assert.equal(e.PAYLOAD_LOG_SAS_TOKEN_FILE, `${PAYLOAD_LOG_CREDENTIALS_DIR}/sasToken`);
      assert.equal(e.PAYLOAD_LOG_HASH_KEY_FILE, `${PAYLOAD_LOG_HASH_KEY_DIR}/hashKey`);
      assert.equal(e.PAYLOAD_LOG_REDACT_FIELDS, 'Location_of_incident,Main_driver');
      assert.equal(e.PAYLOAD_LOG_REDACT_MODE, 'hash');
      assert.deepEqual(
        pod?.volumes?.filter((v) => v.name.startsWith('payload-log')).map((v) => v.secret),
        [
          { secretName: 'payload-log-sas', items: [{ key: 'token', path: 'sasToken' }], defaultMode: 0o440 },
          { secretName: 'payload-log-key', items: [{ key: 'hashKey', path: 'hashKey' }], defaultMode: 0o440 },
        ],
      );
      assert.ok(
        c.volumeMounts?.filter((m) => m.name.startsWith('payload-log')).every((m) => m.readOnly === true),
      );
    }
    assert.deepEqual(payloadLogSecrets(fm), [
      { name: 'payload-log-sas', field: 'spec.logging.sink.blob.credentialsSecretRef' },
      { name: 'payload-log-key', field: 'spec.logging.redact.hashKeySecretRef' },
    ]);
  });
});
