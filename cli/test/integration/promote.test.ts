// fnolctl promote / rollback / status against the real API server (local
// cluster, CRD from crds/) with the real operator reconciling, and model
// versions published to the real model store (Azurite) by the publish step.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RunningOperator } from '../../../operator/src/app';
import { clusterWithCrd, inProcessOperator } from '../../../operator/test/integration/harness';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import { connectFromEnv, sha256 } from '../../src/model-store';
import { publishModel, type PublishResult } from '../../src/publish-model';
import { useStore } from '../../../pipeline/test/support/store';
import { deployStageCommands } from '../../../pipeline/test/support/deploy-stage';
import { API_VERSION, Annotations, KIND, type FnolModel } from '@fnol/api';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe('fnolctl against the cluster with the operator running', function () {
  this.timeout(300_000);
  let cluster: Cluster;
  let ns: string;
  let operator: RunningOperator | undefined;
  let kubeconfig: string;
  const container = `fnolctl-${randomBytes(4).toString('hex')}`;
  const published: Record<string, PublishResult> = {};
  const work = mkdtempSync(path.join(tmpdir(), 'fnolctl-'));

  const fnolctl = async (...args: string[]): Promise<CliResult> => {
    try {
      const { stdout, stderr } = await run('npx', ['tsx', 'cli/src/fnolctl.ts', ...args], {
        cwd: ROOT,
        env: { ...process.env, KUBECONFIG: kubeconfig },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const get = async (): Promise<FnolModel> =>
    JSON.parse(
      await cluster.kubectl(['-n', ns, 'get', 'fnolmodel', 'fnol', '-o', 'json', '--show-managed-fields']),
    ) as FnolModel;

  before(async function () {
    cluster = await clusterWithCrd(this);
    kubeconfig = cluster.kubeconfigPath;
    ns = await createTestNamespace('fnolctl');

    // Two model versions in the model store, published by the publish step. The
    // operator checks each version's digest by downloading it from there.
    const env = await useStore();
    await connectFromEnv(env).client.getContainerClient(container).createIfNotExists({ access: 'blob' });
    for (const version of ['1.0.0', '1.1.0']) {
      const dir = mkdtempSync(path.join(work, `model-${version}-`));
      const bytes = randomBytes(64_000);
      writeFileSync(path.join(dir, `fnol-${version}.onnx`), bytes);
      writeFileSync(
        path.join(dir, `fnol-${version}.model-card.json`),
        JSON.stringify({ version, sha256: sha256(bytes) }),
      );
      published[version] = await publishModel({
        version,
        modelDir: dir,
        container,
        env,
        log: () => undefined,
      });
      writeFileSync(path.join(work, `publish-${version}.json`), JSON.stringify(published[version]));
    }
    operator = await inProcessOperator(cluster.kubeConfig, ns);

    const m = published['1.0.0']!;
    await cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'fnol', namespace: ns },
        spec: { model: { version: m.version, uri: m.uri, sha256: m.sha256 }, replicas: 2 },
      }),
    );
  });

  after(async function () {
    await operator?.stop();
    await connectFromEnv(await useStore())
      .client.getContainerClient(container)
      .deleteIfExists();
  });

  it('promote: applies spec.model from the publish result and waits until Ready', async function () {
    // First make sure 1.0.0 itself is Ready (promoting the same model is a wait, not an edit).
    const first = await fnolctl(
      'promote',
      '-n',
      ns,
      'fnol',
      '--from',
      path.join(work, 'publish-1.0.0.json'),
      '--timeout',
      '120',
    );
    assert.equal(first.code, 0, first.stderr + first.stdout);

    const res = await fnolctl(
      'promote',
      '-n',
      ns,
      'fnol',
      '--from',
      path.join(work, 'publish-1.1.0.json'),
      '--timeout',
      '120',
    );
    assert.equal(res.code, 0, `promote failed:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /1\.0\.0 -> 1\.1\.0/);
    assert.match(res.stdout, /\[\d+s\] /, 'no progress lines while waiting');
    assert.match(res.stdout, /serves 1\.1\.0: Ready/);

    const fm = await get();
    assert.equal(fm.spec.model.version, '1.1.0');
    assert.equal(fm.spec.model.sha256, published['1.1.0']!.sha256);
    assert.equal(fm.status?.phase, 'Ready');
    assert.equal(fm.status?.activeVersion, '1.1.0');
    assert.equal(fm.status?.observedGeneration, fm.metadata.generation);
    assert.equal(JSON.parse(fm.metadata.annotations![Annotations.previousModel]!).version, '1.0.0');
    // fnolctl owns spec.model through server-side apply; replicas stay with kubectl.
    const managed = (
      fm.metadata as { managedFields?: { manager: string; operation: string; fieldsV1?: unknown }[] }
    ).managedFields!;
    const mine = managed.find((f) => f.manager === 'fnolctl' && f.operation === 'Apply');
    assert.ok(mine, 'no Apply entry for field manager fnolctl');
    assert.match(JSON.stringify(mine.fieldsV1), /"f:model"/);
    assert.doesNotMatch(JSON.stringify(mine.fieldsV1), /"f:replicas"/);
  });

  it('promote: a version that goes Degraded is restored to the previous model, exit 3', async function () {
    // The blob exists but is not what the digest says: the operator refuses it.
    const bad = { ...published['1.1.0']!, version: '1.2.0', sha256: sha256(Buffer.from('something else')) };
    writeFileSync(path.join(work, 'publish-bad.json'), JSON.stringify(bad));
    const res = await fnolctl(
      'promote',
      '-n',
      ns,
      'fnol',
      '--from',
      path.join(work, 'publish-bad.json'),
      '--timeout',
      '90',
    );
    assert.equal(res.code, 3, `expected exit 3:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /restoring the previous spec\.model 1\.1\.0/);
    assert.match(res.stderr, /promotion of 1\.2\.0 failed .*restored to 1\.1\.0 and is Ready/);
    const fm = await get();
    assert.equal(fm.spec.model.version, '1.1.0');
    assert.equal(fm.spec.model.sha256, published['1.1.0']!.sha256);
    assert.equal(fm.status?.phase, 'Ready');
    assert.equal(fm.status?.activeVersion, '1.1.0');
    // The rollback target is still the model before 1.1.0.
    assert.equal(JSON.parse(fm.metadata.annotations![Annotations.previousModel]!).version, '1.0.0');
  });

  it('rollback: returns to the model the last promotion replaced', async function () {
    const res = await fnolctl('rollback', '-n', ns, 'fnol', '--timeout', '120');
    assert.equal(res.code, 0, `rollback failed:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /rolling back FnolModel .* from 1\.1\.0 to 1\.0\.0/);
    const fm = await get();
    assert.equal(fm.spec.model.version, '1.0.0');
    assert.equal(fm.status?.activeVersion, '1.0.0');
    assert.equal(fm.status?.phase, 'Ready');
    assert.equal(JSON.parse(fm.metadata.annotations![Annotations.previousModel]!).version, '1.1.0');
  });

  it('status: human and JSON output; clear errors for a missing FnolModel or bad input', async function () {
    const human = await fnolctl('status', '-n', ns, 'fnol');
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /active version {3}1\.0\.0/);
    assert.match(human.stdout, /phase {12}Ready/);
    const json = await fnolctl('status', '-n', ns, 'fnol', '--json');
    const parsed = JSON.parse(json.stdout.trim().split('\n').pop()!) as FnolModel;
    assert.equal(parsed.status?.activeVersion, '1.0.0');

    const missing = await fnolctl('status', '-n', ns, 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /FnolModel .*\/nope: not found/);
    const badSha = await fnolctl(
      'promote',
      '-n',
      ns,
      'fnol',
      '--model-version',
      '2.0.0',
      '--uri',
      published['1.0.0']!.uri,
      '--sha256',
      'xyz',
    );
    assert.equal(badSha.code, 1);
    assert.match(badSha.stderr, /sha256 "xyz" must be 64 lower-case hex characters/);
    const usage = await fnolctl('promote', '-n', ns, 'fnol');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /promote needs --from PUBLISH_JSON/);
    assert.equal((await get()).spec.model.version, '1.0.0', 'a rejected command changed the FnolModel');
  });

  describe("the deploy stage's failure hook rolls back exactly once, only what this run promoted", function () {
    const FM = 'hooked';
    const getHooked = async (): Promise<FnolModel> =>
      JSON.parse(await cluster.kubectl(['-n', ns, 'get', 'fnolmodel', FM, '-o', 'json'])) as FnolModel;
    /** The promote step and the failure hook of one pipeline run, publishing `publishFile`. */
    const pipelineRun = (runId: string, publishFile: string) => {
      const workspace = mkdtempSync(path.join(work, `run-${runId}-`));
      mkdirSync(path.join(workspace, 'model'));
      copyFileSync(publishFile, path.join(workspace, 'model', 'publish.json'));
      const cmds = deployStageCommands(
        {
          'Build.BuildId': runId,
          'System.StageAttempt': '1',
          'Pipeline.Workspace': workspace,
          fnolNamespace: ns,
          fnolModelName: FM,
        },
        { stage: 'DeployProd', rollbackOnFailure: 'true', modelVersion: 'unused', progressive: '' },
        // Shorter waits than the pipeline's 600 s.
        { '--timeout': '90' },
      );
      return { promote: () => fnolctl(...cmds.promote), failureHook: () => fnolctl(...cmds.failureHook) };
    };
    const expectServing = async (version: string): Promise<FnolModel> => {
      const fm = await getHooked();
      assert.equal(fm.spec.model.version, version, 'spec.model.version');
      assert.equal(fm.status?.phase, 'Ready');
      assert.equal(fm.status?.activeVersion, version);
      return fm;
    };

    before(async function () {
      const m = published['1.0.0']!;
      await cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: FM, namespace: ns },
          spec: { model: { version: m.version, uri: m.uri, sha256: m.sha256 }, replicas: 1 },
        }),
      );
      const ready = await fnolctl('promote', '-n', ns, FM, '--from', path.join(work, 'publish-1.0.0.json'));
      assert.equal(ready.code, 0, ready.stderr + ready.stdout);
    });

    it('a failure before the promotion (e.g. the operator install): the hook changes nothing', async function () {
      const before = await expectServing('1.0.0');
      const res = await pipelineRun('1001', path.join(work, 'publish-1.1.0.json')).failureHook();
      assert.equal(res.code, 0, res.stderr + res.stdout);
      assert.match(res.stdout, /nothing to roll back: .*promoted nothing/);
      const after = await expectServing('1.0.0');
      assert.equal(after.metadata.generation, before.metadata.generation, 'the hook wrote spec');
    });

    it('promote succeeds, a later step fails: the hook restores exactly the previous version, once', async function () {
      const runs = pipelineRun('1002', path.join(work, 'publish-1.1.0.json'));
      const promoted = await runs.promote();
      assert.equal(promoted.code, 0, promoted.stderr + promoted.stdout);
      await expectServing('1.1.0');
      assert.equal(
        JSON.parse((await getHooked()).metadata.annotations![Annotations.promotion]!).state,
        'applied',
      );

      // The smoke test fails: the hook runs.
      const hook = await runs.failureHook();
      assert.equal(hook.code, 0, hook.stderr + hook.stdout);
      assert.match(hook.stdout, /rolling back .* from 1\.1\.0 to 1\.0\.0/);
      const back = await expectServing('1.0.0');
      assert.equal(back.spec.model.sha256, published['1.0.0']!.sha256);
      assert.equal(JSON.parse(back.metadata.annotations![Annotations.promotion]!).state, 'rolled-back');

      // A second run of the hook (a retried job) does not go one further.
      const again = await runs.failureHook();
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.match(again.stdout, /nothing to roll back: .*already rolled back to 1\.0\.0/);
      const still = await expectServing('1.0.0');
      assert.equal(still.metadata.generation, back.metadata.generation);
    });

    it('promote fails and restores the previous model: the hook does not roll back a second time', async function () {
      // Serving 1.1.0 with 1.0.0 recorded as previous: a second rollback would drop to 1.0.0.
      const up = await fnolctl('promote', '-n', ns, FM, '--from', path.join(work, 'publish-1.1.0.json'));
      assert.equal(up.code, 0, up.stderr + up.stdout);
      const bad = { ...published['1.1.0']!, version: '1.2.0', sha256: sha256(Buffer.from('not the model')) };
      writeFileSync(path.join(work, 'publish-hook-bad.json'), JSON.stringify(bad));

      const runs = pipelineRun('1003', path.join(work, 'publish-hook-bad.json'));
      const promoted = await runs.promote();
      assert.equal(promoted.code, 3, promoted.stderr + promoted.stdout);
      assert.match(promoted.stderr, /restored to 1\.1\.0 and is Ready/);
      const restored = await expectServing('1.1.0');

      const hook = await runs.failureHook();
      assert.equal(hook.code, 0, hook.stderr + hook.stdout);
      assert.match(hook.stdout, /nothing to roll back: .*promote already restored 1\.1\.0/);
      const after = await expectServing('1.1.0');
      assert.equal(after.metadata.generation, restored.metadata.generation, 'the hook wrote spec');
      assert.equal(JSON.parse(after.metadata.annotations![Annotations.previousModel]!).version, '1.0.0');
    });
  });
});
