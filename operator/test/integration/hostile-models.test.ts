/**
 * Hostile FnolModels against the real API server: a model URI may not carry a
 * Secret to a host of the writer's choice, may not learn anything from the answer
 * of an arbitrary host, and slow or redirecting model servers can neither crash
 * the operator nor stall the reconciles of other FnolModels.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { V1Deployment } from '@kubernetes/client-node';
import type { RunningOperator } from '../../src/app';
import type { KubeClient } from '../../src/kube/client';
import { OWNED_KINDS, resourcePath } from '../../src/reconcilers/index';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import { TestServer } from '../../../lib/model-fetch/test/servers';
import {
  adminClient,
  childOperator,
  clusterWithCrd,
  condition,
  getModel,
  inProcessOperator,
  modelManifest,
  modelPath,
  waitFor,
  type ChildOperator,
} from './harness';
import { API_VERSION, apiPath, KIND, Kinds, Labels } from '@fnol/api';

const TOKEN = 'sv=2024-01-01&sr=b&sig=hostile-test-signature';
const CREDENTIALS_LABEL = Labels.modelCredentials;

async function secret(client: KubeClient, ns: string, name: string, labels: Record<string, string> = {}) {
  await client.create(apiPath(Kinds.Secret, { namespace: ns }), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, labels },
    data: { sasToken: Buffer.from(TOKEN).toString('base64') },
  });
}

function manifest(ns: string, name: string, model: Record<string, unknown>) {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: ns },
    spec: { model },
  };
}

function events(client: KubeClient, ns: string, name: string) {
  return client
    .list<{ involvedObject?: { name?: string }; reason?: string; message?: string }>(
      apiPath(Kinds.Event, { namespace: ns }),
    )
    .then((l) => l.items.filter((e) => e.involvedObject?.name === name));
}

describe('operator integration: hostile FnolModels', function () {
  let cluster: Cluster;
  let client: KubeClient;
  const body = Buffer.from('model bytes for the hostile-model suite');
  const sha256 = createHash('sha256').update(body).digest('hex');

  before(async function () {
    cluster = await clusterWithCrd(this);
    client = adminClient(cluster);
  });

  describe('credentials and hosts (one operator, one namespace)', function () {
    let ns: string;
    let op: RunningOperator;
    // https with a throw-away CA the operator trusts; valid for 127.0.0.1 and localhost.
    const models = new TestServer(true);
    const deployment = (name: string) =>
      client.get<V1Deployment>(resourcePath(OWNED_KINDS.Deployment, ns, name));
    const degraded = (name: string, reason: string) =>
      waitFor(`${name} Degraded/${reason}`, async () => {
        const m = await getModel(client, ns, name);
        return condition(m, 'Degraded')?.reason === reason && m;
      });

    before(async () => {
      await models.start();
      ns = await createTestNamespace('op-hostile');
      op = await inProcessOperator(cluster.kubeConfig, ns, {
        MODEL_ALLOWED_HOSTS: '127.0.0.1',
        MODEL_CA_FILE: models.caFile,
        // The models are served over https: no plain http anywhere, as on a shared cluster.
        MODEL_LOCAL_MODE: 'false',
      });
    });
    after(async () => {
      await op?.stop();
      await models.stop();
    });

    it('refuses a Secret without the model-credentials label: Degraded, no request, no Deployment', async () => {
      await secret(client, ns, 'database-password');
      const uri = models.file('/unmarked.onnx', body);
      await client.create(
        modelPath(ns),
        manifest(ns, 'unmarked', {
          version: '1.0.0',
          uri,
          sha256,
          credentialsSecretRef: { name: 'database-password' },
        }),
      );
      const m = await degraded('unmarked', 'CredentialsSecretNotAllowed');
      const message = condition(m, 'Degraded')?.message ?? '';
      assert.match(message, /Secret database-password is not marked for model downloads/);
      assert.match(message, /serving\.fnol\.io\/model-credentials: "true"/);
      assert.doesNotMatch(message, /hostile-test-signature/);
      assert.equal(models.hits('/unmarked.onnx'), 0, 'no request reached the model host');
      assert.equal(await deployment('unmarked'), undefined, 'no Deployment mounts the Secret');
    });

    it('refuses a host that is not on MODEL_ALLOWED_HOSTS before any request', async () => {
      await secret(client, ns, 'model-sas', { [CREDENTIALS_LABEL]: 'true' });
      const uri = models.file('/offlist.onnx', body).replace('127.0.0.1', 'localhost');
      await client.create(
        modelPath(ns),
        manifest(ns, 'offlist', {
          version: '1.0.0',
          uri,
          sha256,
          credentialsSecretRef: { name: 'model-sas' },
        }),
      );
      const m = await degraded('offlist', 'ModelHostNotAllowed');
      assert.match(
        condition(m, 'Degraded')?.message ?? '',
        /host localhost is not on the model host allow-list/,
      );
      assert.equal(models.hits('/offlist.onnx'), 0, 'no request reached the model host');
      assert.equal(await deployment('offlist'), undefined);
    });

    it('refuses spec.model.identity while the operator has no identity of its own: no request, no Deployment', async () => {
      const uri = models.file('/identity.onnx', body);
      await client.create(
        modelPath(ns),
        manifest(ns, 'identity', {
          version: '1.0.0',
          uri,
          sha256,
          identity: { type: 'WorkloadIdentity', serviceAccountName: 'fnol-model-reader' },
        }),
      );
      const m = await degraded('identity', 'ModelUnreachable');
      assert.match(
        condition(m, 'Degraded')?.message ?? '',
        /spec\.model\.identity is set but the operator has no workload identity of its own.*VERIFY_MODEL_DIGEST=false/,
      );
      assert.equal(models.hits('/identity.onnx'), 0, 'no request reached the model host');
      assert.equal(await deployment('identity'), undefined);
    });

    it('refuses a plain http OIDC issuer outside local mode before rolling anything out', async () => {
      const uri = models.file('/oidc.onnx', body);
      await client.create(modelPath(ns), {
        ...manifest(ns, 'oidc-http', { version: '1.0.0', uri, sha256 }),
        spec: {
          model: { version: '1.0.0', uri, sha256 },
          auth: {
            oidc: {
              issuer: 'http://issuer.example.test/t',
              audiences: ['a'],
              jwksUri: 'http://issuer.example.test/k',
            },
          },
        },
      });
      const m = await degraded('oidc-http', 'OidcIssuerNotAllowed');
      assert.match(condition(m, 'Degraded')?.message ?? '', /spec\.auth\.oidc uses plain http:\/\//);
      assert.equal(await deployment('oidc-http'), undefined);
    });

    it('says only the HTTP status class of a failed download, in status and Events', async () => {
      const uri = models.route('/oracle.onnx', (_req, res) => {
        res.statusMessage = 'Internal Admin Console';
        res.writeHead(404, { 'x-internal-version': 'build-1234' }).end('secret internal page content');
      });
      await client.create(modelPath(ns), manifest(ns, 'oracle', { version: '1.0.0', uri, sha256 }));
      const m = await degraded('oracle', 'ModelUnreachable');
      const message = condition(m, 'Degraded')?.message ?? '';
      assert.match(message, /^model fetch failed: HTTP 4xx;/);
      assert.doesNotMatch(message, /404|Admin Console|build-1234|secret internal/);
      assert.ok(models.hits('/oracle.onnx') >= 1);
      const evs = await waitFor('the Warning event', async () => {
        const e = await events(client, ns, 'oracle');
        return e.some((x) => x.reason === 'ModelUnreachable') && e;
      });
      for (const e of evs)
        assert.doesNotMatch(e.message ?? '', /404|Admin Console|build-1234|secret internal/);
    });

    it('uses a Secret once it is marked, sending its token to the allowed host', async () => {
      await secret(client, ns, 'later-marked');
      const uri = models.file('/marked-later.onnx', body);
      await client.create(
        modelPath(ns),
        manifest(ns, 'later', {
          version: '1.0.0',
          uri,
          sha256,
          credentialsSecretRef: { name: 'later-marked' },
        }),
      );
      await degraded('later', 'CredentialsSecretNotAllowed');
      assert.equal(models.hits('/marked-later.onnx'), 0);
      // The admin marks the Secret; the operator picks it up on its next retry.
      await client.mergePatch(apiPath(Kinds.Secret, { namespace: ns, name: 'later-marked' }), {
        metadata: { labels: { [CREDENTIALS_LABEL]: 'true' } },
      });
      const dep = await waitFor('the Deployment', () => deployment('later'), 30_000);
      assert.ok(
        models.requests.includes(`/marked-later.onnx?${TOKEN}`),
        'the token went to the allowed host',
      );
      const volume = dep.spec?.template.spec?.volumes?.find((v) => v.name === 'model-credentials');
      assert.equal(volume?.secret?.secretName, 'later-marked');
    });

    it('leaves a serving Deployment unchanged when the spec switches to an unmarked Secret', async () => {
      const before = await waitFor('the Deployment', () => deployment('later'));
      await client.mergePatch(modelPath(ns, 'later'), {
        spec: { model: { credentialsSecretRef: { name: 'database-password' } } },
      });
      await degraded('later', 'CredentialsSecretNotAllowed');
      const after = await deployment('later');
      assert.equal(after?.metadata?.generation, before.metadata?.generation, 'the Deployment did not change');
      const volume = after?.spec?.template.spec?.volumes?.find((v) => v.name === 'model-credentials');
      assert.equal(volume?.secret?.secretName, 'later-marked', 'it never mounts the unmarked Secret');
    });
  });

  describe('slow and redirecting model servers (operator process, all namespaces)', function () {
    let hostile: string;
    let healthy: string;
    let proc: ChildOperator;
    let healthPort = 0;
    const models = new TestServer();

    const dump = () => console.log(proc?.logs.slice(-40).join('\n'));

    before(async () => {
      await models.start();
      hostile = await createTestNamespace('op-hostile-slow');
      healthy = await createTestNamespace('op-healthy');
      proc = childOperator({
        KUBECONFIG: cluster.kubeconfigPath,
        LEADER_ELECTION: 'false',
        WATCH_NAMESPACE: '',
        POD_NAME: `hostile-${hostile}`,
        FNOL_SCORER_IMAGE: 'fnol-scorer:test',
        LOG_LEVEL: 'info',
        MODEL_LOCAL_MODE: 'true',
        MODEL_ALLOWED_HOSTS: '127.0.0.1',
        MODEL_FETCH_TIMEOUT_SECONDS: '120',
        // Every hostile check runs at once: workers must stay free anyway.
        MODEL_CHECKS_PER_NAMESPACE: '16',
      });
      healthPort = await waitFor('the operator started', async () => {
        const line = proc.logs.find((l) => l.includes('fnol-operator started'));
        return line ? (JSON.parse(line) as { healthPort: number }).healthPort : undefined;
      });
    });
    after(async () => {
      await proc?.kill('SIGKILL');
      await models.stop();
    });

    it('reconciles a healthy FnolModel in another namespace within 5 s while 8 models trickle and 2 redirect', async function () {
      const trickle = models.trickle('/trickle.onnx', 10_000_000, 1000);
      const toFtp = models.redirect('/to-ftp.onnx', 'ftp://127.0.0.1/model.onnx');
      const toInvalid = models.redirect('/to-invalid.onnx', 'http://[not-a-host');
      await client.create(
        modelPath(hostile),
        modelManifest(hostile, 'to-ftp', { version: '1.0.0', uri: toFtp, sha256 }),
      );
      await client.create(
        modelPath(hostile),
        modelManifest(hostile, 'to-invalid', { version: '1.0.0', uri: toInvalid, sha256 }),
      );
      for (let i = 0; i < 8; i++) {
        await client.create(
          modelPath(hostile),
          modelManifest(hostile, `slow-${i}`, { version: '1.0.0', uri: `${trickle}?model=${i}`, sha256 }),
        );
      }
      try {
        await waitFor(
          '8 trickling downloads in flight',
          async () => models.hits('/trickle.onnx') >= 8,
          30_000,
        );
        const good = models.file('/healthy.onnx', body);
        await client.create(
          modelPath(healthy),
          modelManifest(healthy, 'fnol', { version: '1.0.0', uri: good, sha256 }),
        );
        await waitFor(
          'the healthy Deployment',
          () => client.get<V1Deployment>(resourcePath(OWNED_KINDS.Deployment, healthy, 'fnol')),
          5_000,
        );
        for (const name of ['to-ftp', 'to-invalid']) {
          const m = await waitFor(`${name} Degraded`, async () => {
            const x = await getModel(client, hostile, name);
            return condition(x, 'Degraded')?.status === 'True' && x;
          });
          assert.equal(condition(m, 'Degraded')?.reason, 'ModelUnreachable');
          assert.match(
            condition(m, 'Degraded')?.message ?? '',
            /^model fetch failed: HTTP 3xx \(redirects are not followed\);/,
          );
        }
        const slow = await getModel(client, hostile, 'slow-0');
        assert.equal(condition(slow, 'Progressing')?.reason, 'VerifyingModel');
        assert.equal(proc.proc.exitCode, null, 'the operator process is still running');
        const health = await new Promise<number>((resolve, reject) =>
          http
            .get(`http://127.0.0.1:${healthPort}/healthz`, (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            })
            .on('error', reject),
        );
        assert.equal(health, 200);
      } catch (error) {
        dump();
        throw error;
      }
    });

    it('stops cleanly on SIGTERM with downloads in flight', async () => {
      assert.equal(proc.proc.exitCode, null, 'the operator process is still running');
      const exited = new Promise<number | null>((resolve) => proc.proc.once('exit', (code) => resolve(code)));
      proc.proc.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<string>((r) => setTimeout(() => r('no exit in 30 s'), 30_000)),
      ]);
      assert.equal(code, 0);
      assert.ok(!proc.logs.some((l) => /"level":(50|60)/.test(l)), 'no error or fatal line');
    });
  });
});
