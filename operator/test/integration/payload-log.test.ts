/**
 * spec.logging against the real API server: the CRD refuses what the scorer
 * could not use, the operator renders PAYLOAD_LOG_* and mounts the marked
 * Secrets, and refuses (Degraded, no Deployment) an unmarked Secret and a blob
 * container off MODEL_ALLOWED_HOSTS: a FnolModel's author can neither mount
 * any Secret of the namespace into the scorer nor make it send records to a
 * host of their choice.
 */
import { strict as assert } from 'node:assert';
import type { V1Deployment } from '@kubernetes/client-node';
import type { RunningOperator } from '../../src/app';
import { KubeClient, KubeError } from '../../src/kube/client';
import { OWNED_KINDS, resourcePath } from '../../src/reconcilers/index';
import { createTestNamespace } from '../../../test/support/cluster';
import {
  adminClient,
  clusterWithCrd,
  condition,
  getModel,
  inProcessOperator,
  modelPath,
  waitFor,
} from './harness';
import { API_VERSION, apiPath, KIND, Kinds, Labels } from '@fnol/api';

const MODEL = { version: '1.0.0', uri: 'file:///models/fnol-1.0.0.onnx', sha256: 'a'.repeat(64) };
const CONTAINER = 'https://127.0.0.1:10000/devstoreaccount1/payload-logs';

function logging(secret: string, containerUrl = CONTAINER) {
  return {
    sampleRate: 0.1,
    sink: { type: 'blob', blob: { containerUrl, credentialsSecretRef: { name: secret } } },
    redact: { fields: ['Location_of_incident'], mode: 'hash', hashKeySecretRef: { name: 'payload-log-key' } },
  };
}

describe('operator integration: spec.logging', function () {
  let client: KubeClient;
  let ns: string;
  let op: RunningOperator;

  const secret = (name: string, marked: boolean, key: string) =>
    client.create(apiPath(Kinds.Secret, { namespace: ns }), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, labels: marked ? { [Labels.modelCredentials]: 'true' } : {} },
      data: { [key]: Buffer.from('sv=2024-01-01&sr=c&sig=payload-log-test').toString('base64') },
    });
  const create = (name: string, spec: Record<string, unknown>) =>
    client.create(modelPath(ns), {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, namespace: ns },
      spec,
    });
  const deployment = (name: string) =>
    client.get<V1Deployment>(resourcePath(OWNED_KINDS.Deployment, ns, name));
  const degraded = (name: string, reason: string) =>
    waitFor(`${name} Degraded/${reason}`, async () => {
      const m = await getModel(client, ns, name);
      return condition(m, 'Degraded')?.reason === reason && m;
    });

  before(async function () {
    const cluster = await clusterWithCrd(this);
    client = adminClient(cluster);
    ns = await createTestNamespace('op-paylog');
    await secret('payload-log-sas', true, 'sasToken');
    await secret('payload-log-key', true, 'hashKey');
    await secret('database-password', false, 'sasToken');
    op = await inProcessOperator(cluster.kubeConfig, ns, { MODEL_ALLOWED_HOSTS: '127.0.0.1' });
  });
  after(async () => {
    await op?.stop();
  });

  const refusals: { what: string; logging: Record<string, unknown>; message: RegExp }[] = [
    { what: 'a sample rate over 1', logging: { sampleRate: 2 }, message: /spec\.logging\.sampleRate/ },
    {
      what: 'a blob sink without its container',
      logging: { sampleRate: 1, sink: { type: 'blob' } },
      message: /spec\.logging\.sink\.type blob needs spec\.logging\.sink\.blob/,
    },
    {
      what: 'a container URL with a SAS token',
      logging: logging('payload-log-sas', `${CONTAINER}?sv=1&sig=x`),
      message:
        /containerUrl must be https:\/\/HOST\[:PORT\]\/CONTAINER without user information, query string/,
    },
    {
      what: 'hashing without a key',
      logging: { sampleRate: 1, redact: { mode: 'hash' } },
      message: /spec\.logging\.redact\.mode hash needs spec\.logging\.redact\.hashKeySecretRef/,
    },
  ];
  for (const c of refusals) {
    it(`the API server refuses ${c.what}, naming the field`, async () => {
      await assert.rejects(
        client.request('POST', modelPath(ns), {
          body: {
            apiVersion: API_VERSION,
            kind: KIND,
            metadata: { name: 'bad' },
            spec: { model: MODEL, logging: c.logging },
          },
          query: { dryRun: 'All', fieldValidation: 'Strict' },
        }),
        (err: unknown) =>
          err instanceof KubeError && [400, 422].includes(err.statusCode) && c.message.test(err.message),
      );
    });
  }

  it('renders PAYLOAD_LOG_* and mounts the marked Secrets read-only', async () => {
    await create('logged', { model: MODEL, logging: logging('payload-log-sas') });
    const d = await waitFor('Deployment logged', () => deployment('logged'));
    const pod = d.spec?.template.spec;
    const c = pod?.containers.find((x) => x.name === 'scorer');
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.PAYLOAD_LOG_SAMPLE_RATE, '0.1');
    assert.equal(env.PAYLOAD_LOG_SINK, 'blob');
    assert.equal(env.PAYLOAD_LOG_CONTAINER_URL, CONTAINER);
    assert.equal(env.PAYLOAD_LOG_REDACT_MODE, 'hash');
    assert.equal(env.PAYLOAD_LOG_REDACT_FREE_TEXT, 'true', 'the CRD defaults freeText to true');
    assert.ok(!JSON.stringify(d).includes('payload-log-test'), 'no token in the Deployment');
    assert.deepEqual(
      pod?.volumes?.filter((v) => v.name.startsWith('payload-log')).map((v) => v.secret?.secretName),
      ['payload-log-sas', 'payload-log-key'],
    );
    const m = await waitFor('logged not Degraded', async () => {
      const fm = await getModel(client, ns, 'logged');
      return condition(fm, 'Degraded') && fm;
    });
    assert.equal(condition(m, 'Degraded')?.status, 'False');
  });

  it('refuses an unmarked Secret: Degraded, no Deployment mounts it', async () => {
    await create('unmarked', { model: MODEL, logging: logging('database-password') });
    const m = await degraded('unmarked', 'CredentialsSecretNotAllowed');
    const message = condition(m, 'Degraded')?.message ?? '';
    assert.match(
      message,
      /Secret database-password is not marked for the scorer: spec\.logging\.sink\.blob\.credentialsSecretRef/,
    );
    assert.equal(await deployment('unmarked'), undefined);
  });

  it('refuses a container off MODEL_ALLOWED_HOSTS: Degraded, no Deployment', async () => {
    await create('exfiltrate', {
      model: MODEL,
      logging: logging('payload-log-sas', 'https://collector.example.com/logs'),
    });
    const m = await degraded('exfiltrate', 'PayloadLogSinkNotAllowed');
    assert.match(
      condition(m, 'Degraded')?.message ?? '',
      /spec\.logging\.sink\.blob\.containerUrl refused: .*host collector\.example\.com is not on the model host allow-list/,
    );
    assert.equal(await deployment('exfiltrate'), undefined);
  });
});
