// fnolctl promote --mirror/--canary against the real API server (local cluster,
// CRD from crds/). No operator runs here: the test writes status through the
// status subresource itself, as the operator's contract says it does (status
// .canary with the comparison, the CanaryReady condition, the rollout of
// spec.model), so each outcome of the analysis can be produced on purpose.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import {
  API_VERSION,
  Annotations,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type FnolModel,
  type FnolModelStatus,
  type FnolModelStatusCanaryComparison,
} from '@fnol/api';
import { clusterWithCrd, waitFor } from '../../../operator/test/integration/harness';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import { deployStageCommands, stageParameters } from '../../../pipeline/test/support/deploy-stage';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = ['tsx', 'cli/src/fnolctl.ts'];

const model = (version: string, hex: string) => ({
  version,
  uri: `https://models.example.com/fnol/${version}/fnol-${version}.onnx`,
  sha256: hex.repeat(64),
});
const STABLE = model('1.0.0', 'a');
const CANDIDATE = model('1.1.0', 'b');
const candidateFlags = [
  '--model-version',
  CANDIDATE.version,
  '--uri',
  CANDIDATE.uri,
  '--sha256',
  CANDIDATE.sha256,
];

/** What the test's stand-in for the operator reports about the candidate. */
interface Scenario {
  /** CanaryReady True once the candidate is in spec.canary (false: never ready). */
  canaryReady: boolean;
  /** The comparison after `ticks` status writes with the candidate mirrored. */
  comparison: (ticks: number) => FnolModelStatusCanaryComparison;
}

const agreeing = (ticks: number): FnolModelStatusCanaryComparison => ({
  requests: 60 * ticks,
  dropped: 0,
  candidateErrors: 0,
  candidateErrorRate: 0,
  stableLatencyP99Seconds: 0.04,
  candidateLatencyP99Seconds: 0.042,
  outputs: [
    {
      name: 'ultimate_cost',
      medianRelativeDifference: 0.000001,
      p95RelativeDifference: 0.00002,
      threshold: 0.01,
      exceedingShare: 0,
    },
  ],
  pods: 2,
});

/**
 * Plays the operator for one FnolModel: every 300 ms it reads the object and
 * writes status (observedGeneration, phase Ready with spec.model active, and
 * while spec.canary is set status.canary and CanaryReady) through the status
 * subresource. It also records each spec it saw, by generation.
 */
class StatusWriter {
  readonly seen = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private stopped = false;
  private readonly api: k8s.CustomObjectsApi;

  constructor(
    cluster: Cluster,
    private readonly ns: string,
    private readonly name: string,
    private readonly scenario: Scenario,
  ) {
    this.api = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  }

  start(): this {
    const loop = async () => {
      try {
        await this.tick();
      } catch {
        // The next tick tries again (the object may be mid-update).
      }
      if (!this.stopped) this.timer = setTimeout(() => void loop(), 300);
    };
    void loop();
    return this;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The distinct specs seen, in generation order: "model 1.0.0, canary 1.1.0 traffic 10 mirror 100". */
  specs(): string[] {
    return [...this.seen.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
  }

  private async tick(): Promise<void> {
    const { body } = await this.api.getNamespacedCustomObject(GROUP, VERSION, this.ns, PLURAL, this.name);
    const fm = body as FnolModel;
    const gen = fm.metadata.generation ?? 0;
    const c = fm.spec.canary;
    this.seen.set(
      gen,
      `model ${fm.spec.model.version}` +
        (c ? `, canary ${c.model.version} traffic ${c.trafficPercent} mirror ${c.mirrorPercent}` : ''),
    );
    const at = new Date().toISOString();
    const conditions: NonNullable<FnolModelStatus['conditions']> = [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Available',
        message: 'ready',
        observedGeneration: gen,
        lastTransitionTime: at,
      },
    ];
    let canary: FnolModelStatus['canary'] | null = null;
    if (c) {
      this.ticks++;
      const ready = this.scenario.canaryReady;
      conditions.push({
        type: 'CanaryReady',
        status: ready ? 'True' : 'False',
        reason: ready ? 'CandidateReady' : 'CandidateProgressing',
        message: ready ? `${c.model.version} ready` : 'no candidate pod is ready yet',
        observedGeneration: gen,
        lastTransitionTime: at,
      });
      canary = {
        version: c.model.version,
        readyReplicas: ready ? 1 : 0,
        trafficPercent: ready ? c.trafficPercent : 0,
        mirrorPercent: c.mirrorPercent,
        comparison: { ...this.scenario.comparison(this.ticks), updatedAt: at },
      };
    } else {
      this.ticks = 0;
    }
    const status = {
      observedGeneration: gen,
      phase: 'Ready',
      activeVersion: fm.spec.model.version,
      readyReplicas: 2,
      conditions,
      canary,
    };
    await this.api.patchNamespacedCustomObjectStatus(
      GROUP,
      VERSION,
      this.ns,
      PLURAL,
      this.name,
      { status },
      undefined,
      'fnol-test-status',
      undefined,
      { headers: { 'Content-Type': 'application/merge-patch+json' } },
    );
  }
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe('fnolctl promote --mirror/--canary against the API server (status written as the operator would)', function () {
  this.timeout(180_000);
  let cluster: Cluster;
  let ns: string;
  let writer: StatusWriter | undefined;

  const fnolctl = async (...args: string[]): Promise<CliResult> => {
    try {
      const { stdout, stderr } = await run('npx', [...CLI, ...args], {
        cwd: ROOT,
        env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const get = async (name: string): Promise<FnolModel> =>
    JSON.parse(await cluster.kubectl(['-n', ns, 'get', 'fnolmodel', name, '-o', 'json'])) as FnolModel;
  const record = (fm: FnolModel): { id: string; state: string; to: { version: string } } =>
    JSON.parse(fm.metadata.annotations?.[Annotations.promotion] ?? 'null') as never;
  const count = (text: string, re: RegExp): number => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

  /** A FnolModel serving 1.0.0 (with a Gateway when `gateway`), its status written by a StatusWriter. */
  const serving = async (name: string, scenario: Scenario, gateway = true): Promise<FnolModel> => {
    await cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name, namespace: ns },
        spec: {
          model: STABLE,
          replicas: 2,
          ...(gateway ? { gateway: { parentRef: { name: 'public', namespace: 'gateways' } } } : {}),
        },
      }),
    );
    writer = new StatusWriter(cluster, ns, name, scenario).start();
    return waitFor(`status of ${name}`, async () => {
      const fm = await get(name);
      return fm.status?.observedGeneration === fm.metadata.generation && fm;
    });
  };

  before(async function () {
    cluster = await clusterWithCrd(this);
    ns = await createTestNamespace('fnolctl-canary');
  });

  afterEach(function () {
    writer?.stop();
    writer = undefined;
  });

  it('mirror, canary 10 and 50, then the candidate moves into spec.model in one patch', async function () {
    const before = await serving('happy', { canaryReady: true, comparison: agreeing });
    const g0 = before.metadata.generation!;
    const res = await fnolctl(
      'promote',
      '-n',
      ns,
      'happy',
      ...candidateFlags,
      '--mirror',
      '100',
      '--canary',
      '10,50',
      '--step-seconds',
      '2',
      '--timeout',
      '30',
      '--promotion-id',
      '9001-DeployProd-1',
    );
    assert.equal(res.code, 0, `promote failed:\n${res.stdout}\n${res.stderr}`);
    for (const step of ['mirror 100%', 'canary 10%', 'canary 50%']) {
      assert.match(
        res.stdout,
        new RegExp(
          `\\[${step}\\] \\d+s/2s  requests \\d+  median diff 0\\.0001%  p95 diff 0\\.002%  errors 0%  latency x1\\.05`,
        ),
      );
      assert.match(res.stdout, new RegExp(`\\[${step}\\] analysis passed`));
    }
    assert.match(res.stdout, /spec\.model 1\.0\.0 -> 1\.1\.0 and spec\.canary removed in one patch/);
    assert.match(res.stdout, /serves 1\.1\.0: Ready/);

    const fm = await get('happy');
    assert.equal(fm.spec.model.version, '1.1.0');
    assert.equal(fm.spec.model.sha256, CANDIDATE.sha256);
    assert.equal(fm.spec.canary, undefined);
    assert.equal(JSON.parse(fm.metadata.annotations![Annotations.previousModel]!).version, '1.0.0');
    assert.deepEqual(record(fm), { id: '9001-DeployProd-1', from: STABLE, to: CANDIDATE, state: 'applied' });
    // Four spec writes: the canary, two shares, the promotion; the status writer saw each of them.
    assert.equal(fm.metadata.generation, g0 + 4);
    await waitFor('the status writer to see the last generation', async () => writer!.seen.has(g0 + 4));
    assert.deepEqual(writer!.specs(), [
      'model 1.0.0',
      'model 1.0.0, canary 1.1.0 traffic 0 mirror 100',
      'model 1.0.0, canary 1.1.0 traffic 10 mirror 100',
      'model 1.0.0, canary 1.1.0 traffic 50 mirror 100',
      'model 1.1.0',
    ]);

    // The pipeline runs the same step again (a re-run): no second canary, nothing changes.
    const again = await fnolctl(
      'promote',
      '-n',
      ns,
      'happy',
      ...candidateFlags,
      '--mirror',
      '100',
      '--canary',
      '10,50',
      '--promotion-id',
      '9001-DeployProd-1',
    );
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /promotion 9001-DeployProd-1 already moved 1\.1\.0 into spec\.model/);
    assert.equal((await get('happy')).metadata.generation, g0 + 4);
  });

  it('a breaching comparison removes spec.canary once, prints the failing figures and exits 5', async function () {
    const before = await serving(
      'breach',
      {
        canaryReady: true,
        comparison: (t) => ({
          ...agreeing(t),
          outputs: [
            {
              name: 'ultimate_cost',
              medianRelativeDifference: 0.0004,
              p95RelativeDifference: 0.2,
              threshold: 0.01,
              exceedingShare: 0.3,
            },
          ],
        }),
      },
      false,
    );
    const g0 = before.metadata.generation!;
    const res = await fnolctl(
      'promote',
      '-n',
      ns,
      'breach',
      ...candidateFlags,
      '--mirror',
      '100',
      '--step-seconds',
      '2',
      '--timeout',
      '30',
      '--promotion-id',
      '9002-DeployProd-1',
    );
    assert.equal(res.code, 5, `expected exit 5:\n${res.stdout}\n${res.stderr}`);
    assert.equal(count(res.stdout, /removing spec\.canary/), 1, res.stdout);
    assert.match(res.stderr, /promotion of 1\.1\.0 stopped: \[mirror 100%\] analysis failed/);
    assert.match(res.stderr, /p95 relative difference of ultimate_cost +20% +\(threshold <= 1%\)/);
    assert.match(res.stderr, /share over 1% of ultimate_cost +30% +\(threshold <= 5%\)/);
    assert.doesNotMatch(res.stderr, /median relative difference/, 'a passing figure was listed as failed');
    assert.match(res.stderr, /still serves 1\.0\.0/);

    const fm = await get('breach');
    assert.equal(fm.spec.canary, undefined);
    assert.equal(fm.spec.model.version, '1.0.0');
    assert.equal(fm.metadata.generation, g0 + 2, 'one write set the canary, exactly one removed it');
    assert.equal(record(fm).state, 'canary-stopped');

    // The deploy stage's failure hook: promote already stopped the canary, nothing more to undo.
    const hook = await fnolctl('rollback', '-n', ns, 'breach', '--if-promoted-by', '9002-DeployProd-1');
    assert.equal(hook.code, 0, hook.stderr + hook.stdout);
    assert.match(hook.stdout, /nothing to roll back: .*promote already stopped it/);
    // A re-run of the same pipeline run does not start a second canary.
    const rerun = await fnolctl(
      'promote',
      '-n',
      ns,
      'breach',
      ...candidateFlags,
      '--mirror',
      '100',
      '--promotion-id',
      '9002-DeployProd-1',
    );
    assert.equal(rerun.code, 5, rerun.stderr + rerun.stdout);
    assert.match(rerun.stderr, /promotion 9002-DeployProd-1 of 1\.1\.0 already ended \(canary-stopped\)/);
    const after = await get('breach');
    assert.equal(after.metadata.generation, g0 + 2);
    assert.equal(after.spec.model.version, '1.0.0');
  });

  it('stops before the hold ends when the candidate fails too many requests', async function () {
    await serving(
      'errors',
      {
        canaryReady: true,
        comparison: (t) => ({ ...agreeing(t), candidateErrors: 20 * t, candidateErrorRate: 20 / 80 }),
      },
      false,
    );
    const res = await fnolctl(
      'promote',
      '-n',
      ns,
      'errors',
      ...candidateFlags,
      '--mirror',
      '50',
      '--step-seconds',
      '600',
      '--timeout',
      '30',
    );
    assert.equal(res.code, 5, `expected exit 5:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stderr, /\[mirror 50%\] analysis failed after \d+s/);
    assert.match(res.stderr, /candidate error rate +25% +\(threshold <= 1%\)/);
    assert.equal(count(res.stdout, /removing spec\.canary/), 1);
    assert.equal((await get('errors')).spec.canary, undefined);
  });

  it('a candidate that never becomes ready is removed once at the timeout, exit 6', async function () {
    const before = await serving('slow', { canaryReady: false, comparison: agreeing });
    const g0 = before.metadata.generation!;
    const res = await fnolctl(
      'promote',
      '-n',
      ns,
      'slow',
      ...candidateFlags,
      '--mirror',
      '100',
      '--canary',
      '10',
      '--step-seconds',
      '2',
      '--timeout',
      '4',
      '--promotion-id',
      '9003-DeployProd-1',
    );
    assert.equal(res.code, 6, `expected exit 6:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /CanaryReady=False \(CandidateProgressing: no candidate pod is ready yet\)/);
    assert.match(res.stderr, /the candidate was not ready after 4s/);
    assert.equal(count(res.stdout, /removing spec\.canary/), 1);
    const fm = await get('slow');
    assert.equal(fm.spec.canary, undefined);
    assert.equal(fm.spec.model.version, '1.0.0');
    assert.equal(fm.metadata.generation, g0 + 2);
    assert.equal(record(fm).state, 'canary-stopped');
    const hook = await fnolctl('rollback', '-n', ns, 'slow', '--if-promoted-by', '9003-DeployProd-1');
    assert.equal(hook.code, 0, hook.stderr + hook.stdout);
    assert.match(hook.stdout, /nothing to roll back/);
    assert.equal((await get('slow')).metadata.generation, g0 + 2);
  });

  describe('a promote killed mid-step (agent lost, job cancelled)', function () {
    /**
     * Starts a progressive promote (one node process, so a signal reaches only
     * fnolctl) and sends it `signal` once it holds the mirror step.
     */
    const interruptedPromote = async (
      name: string,
      id: string,
      signal: NodeJS.Signals,
    ): Promise<{ code: number | null; out: string }> => {
      const args = [...candidateFlags, '--mirror', '100', '--step-seconds', '600', '--timeout', '30'];
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'cli/src/fnolctl.ts', 'promote', '-n', ns, name, ...args, '--promotion-id', id],
        {
          cwd: ROOT,
          env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      try {
        await waitFor(
          'the mirror step to be held',
          async () => /\[mirror 100%\] \d+s\/600s/.test(out),
          60_000,
        );
      } finally {
        child.kill(signal);
      }
      return { code: await exited, out };
    };
    const killedPromote = async (name: string, id: string): Promise<string> =>
      (await interruptedPromote(name, id, 'SIGKILL')).out;

    it('SIGTERM (a cancelled job) during a step removes spec.canary once before exiting', async function () {
      const before = await serving('terminated', { canaryReady: true, comparison: agreeing }, false);
      const g0 = before.metadata.generation!;
      const { code, out } = await interruptedPromote('terminated', '9006-DeployProd-1', 'SIGTERM');
      assert.equal(code, 1, out);
      assert.match(out, /SIGTERM: stopping the promotion/);
      assert.equal(count(out, /removing spec\.canary/), 1, out);
      assert.match(out, /\[mirror 100%\] interrupted by SIGTERM/);
      const fm = await get('terminated');
      assert.equal(fm.spec.canary, undefined);
      assert.equal(fm.spec.model.version, '1.0.0');
      assert.equal(fm.metadata.generation, g0 + 2);
      assert.equal(record(fm).state, 'canary-stopped');
    });

    it('the same run resumes its canary instead of starting a second one', async function () {
      const before = await serving('resumed', { canaryReady: true, comparison: agreeing });
      const g0 = before.metadata.generation!;
      await killedPromote('resumed', '9004-DeployProd-1');
      assert.equal(record(await get('resumed')).state, 'canary');

      const res = await fnolctl(
        'promote',
        '-n',
        ns,
        'resumed',
        ...candidateFlags,
        '--mirror',
        '100',
        '--canary',
        '10',
        '--step-seconds',
        '2',
        '--timeout',
        '30',
        '--promotion-id',
        '9004-DeployProd-1',
      );
      assert.equal(res.code, 0, `resumed promote failed:\n${res.stdout}\n${res.stderr}`);
      assert.match(res.stdout, /already has 1\.1\.0 in spec\.canary .*resuming at mirror 100%/);
      const fm = await get('resumed');
      assert.equal(fm.spec.model.version, '1.1.0');
      assert.equal(fm.spec.canary, undefined);
      // The canary was set once (by the killed run), then one share and the promotion.
      assert.equal(fm.metadata.generation, g0 + 3);
    });

    it('the failure hook removes the canary the killed run left, once', async function () {
      const before = await serving('cancelled', { canaryReady: true, comparison: agreeing }, false);
      const g0 = before.metadata.generation!;
      await killedPromote('cancelled', '9005-DeployProd-1');
      const hook = await fnolctl('rollback', '-n', ns, 'cancelled', '--if-promoted-by', '9005-DeployProd-1');
      assert.equal(hook.code, 0, hook.stderr + hook.stdout);
      assert.match(
        hook.stdout,
        /removing the canary 1\.1\.0 .*9005-DeployProd-1 has a canary of 1\.1\.0 in progress/,
      );
      const fm = await get('cancelled');
      assert.equal(fm.spec.canary, undefined);
      assert.equal(fm.spec.model.version, '1.0.0');
      assert.equal(fm.metadata.generation, g0 + 2);
      assert.equal(record(fm).state, 'rolled-back');
      const again = await fnolctl('rollback', '-n', ns, 'cancelled', '--if-promoted-by', '9005-DeployProd-1');
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.match(again.stdout, /nothing to roll back: .*already rolled back/);
      assert.equal((await get('cancelled')).metadata.generation, g0 + 2);
    });
  });

  describe("the prod stage's own promote step and failure hook (flags from azure-pipelines.yml)", function () {
    /** The prod stage's commands for one run, with shorter holds and waits than the pipeline's. */
    const prodRun = (runId: string, fnolModelName: string) => {
      const workspace = mkdtempSync(path.join(tmpdir(), `fnolctl-run-${runId}-`));
      mkdirSync(path.join(workspace, 'model'));
      writeFileSync(
        path.join(workspace, 'model', 'publish.json'),
        JSON.stringify({ name: 'fnol', ...CANDIDATE }),
      );
      const cmds = deployStageCommands(
        {
          'Build.BuildId': runId,
          'System.StageAttempt': '1',
          'Pipeline.Workspace': workspace,
          fnolNamespace: ns,
          fnolModelName,
        },
        stageParameters('DeployProd'),
        { '--timeout': '30', '--step-seconds': '2' },
      );
      return {
        promote: () => fnolctl(...cmds.promote),
        failureHook: () => fnolctl(...cmds.failureHook),
        cmds,
      };
    };

    it('passes every step, then a failed smoke test makes the hook restore the previous model once', async function () {
      const before = await serving('prod-ok', { canaryReady: true, comparison: agreeing });
      const g0 = before.metadata.generation!;
      const runs = prodRun('9101', 'prod-ok');
      assert.ok(runs.cmds.promote.includes('--mirror'), `not progressive: ${runs.cmds.promote.join(' ')}`);
      const res = await runs.promote();
      assert.equal(res.code, 0, `prod promote failed:\n${res.stdout}\n${res.stderr}`);
      for (const step of ['mirror 100%', 'canary 10%', 'canary 50%']) {
        assert.match(res.stdout, new RegExp(`\\[${step}\\] analysis passed`));
      }
      assert.match(res.stdout, /minRequests=200; promotion 9101-DeployProd-1/);
      const promoted = await get('prod-ok');
      assert.equal(promoted.spec.model.version, '1.1.0');
      assert.equal(promoted.spec.canary, undefined);
      assert.equal(promoted.metadata.generation, g0 + 4);

      const hook = await runs.failureHook();
      assert.equal(hook.code, 0, hook.stderr + hook.stdout);
      assert.match(hook.stdout, /rolling back .* from 1\.1\.0 to 1\.0\.0/);
      const back = await get('prod-ok');
      assert.equal(back.spec.model.version, '1.0.0');
      assert.equal(record(back).state, 'rolled-back');
      const again = await runs.failureHook();
      assert.match(again.stdout, /nothing to roll back: .*already rolled back/);
      assert.equal((await get('prod-ok')).metadata.generation, back.metadata.generation);
    });

    it('a breach: promote removes the canary and exits 5, the hook then changes nothing', async function () {
      const before = await serving('prod-bad', {
        canaryReady: true,
        comparison: (t) => ({ ...agreeing(t), candidateLatencyP99Seconds: 0.2 }),
      });
      const g0 = before.metadata.generation!;
      const runs = prodRun('9102', 'prod-bad');
      const res = await runs.promote();
      assert.equal(res.code, 5, `expected exit 5:\n${res.stdout}\n${res.stderr}`);
      assert.match(res.stderr, /candidate\/stable p99 latency +x5 +\(threshold <= x2\)/);
      const hook = await runs.failureHook();
      assert.equal(hook.code, 0, hook.stderr + hook.stdout);
      assert.match(hook.stdout, /nothing to roll back: .*promote already stopped it/);
      const fm = await get('prod-bad');
      assert.equal(fm.spec.model.version, '1.0.0');
      assert.equal(fm.spec.canary, undefined);
      assert.equal(fm.metadata.generation, g0 + 2);
    });
  });

  it('status shows the canary and its comparison as a table; bad flags change nothing', async function () {
    await serving('shown', { canaryReady: true, comparison: agreeing });
    await cluster.kubectl([
      '-n',
      ns,
      'patch',
      'fnolmodel',
      'shown',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { canary: { model: CANDIDATE, trafficPercent: 10, mirrorPercent: 100 } } }),
    ]);
    await waitFor(
      'the comparison',
      async () => ((await get('shown')).status?.canary?.comparison?.requests ?? 0) > 0,
    );
    const res = await fnolctl('status', '-n', ns, 'shown');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /canary spec {6}1\.1\.0: traffic 10%, mirror 100%/);
    assert.match(
      res.stdout,
      /canary status {4}1\.1\.0: ready replicas 1, traffic 10%, mirror 100% \(as applied\)/,
    );
    assert.match(
      res.stdout,
      /output +requests +median diff +p95 diff +over threshold +cand\. errors +p99 latency cand\.\/stable/,
    );
    assert.match(
      res.stdout,
      /ultimate_cost +\d+ +0\.0001% +0\.002% +0% \(>1%\) +0% +42 ms \/ 40 ms \(x1\.05\)/,
    );
    const json = JSON.parse(
      (await fnolctl('status', '-n', ns, 'shown', '--json')).stdout.trim().split('\n').pop()!,
    ) as FnolModel;
    assert.equal(json.spec.canary?.trafficPercent, 10);
    assert.equal(json.status?.canary?.version, '1.1.0');

    const g = (await get('shown')).metadata.generation;
    const unknown = await fnolctl(
      'promote',
      '-n',
      ns,
      'shown',
      ...candidateFlags,
      '--mirror',
      '100',
      '--analysis',
      'maxP99Diff=0.1',
    );
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /invalid --analysis: unknown key "maxP99Diff" \(known: maxMedianDiff, /);
    const noMirror = await fnolctl('promote', '-n', ns, 'shown', ...candidateFlags, '--canary', '10,50');
    assert.equal(noMirror.code, 2);
    assert.match(noMirror.stderr, /needs --mirror PERCENT/);
    // Another canary is already on the object: refused, not replaced.
    const other = model('1.2.0', 'c');
    const busy = await fnolctl(
      'promote',
      '-n',
      ns,
      'shown',
      '--model-version',
      other.version,
      '--uri',
      other.uri,
      '--sha256',
      other.sha256,
      '--mirror',
      '100',
    );
    assert.equal(busy.code, 1, busy.stderr + busy.stdout);
    assert.match(busy.stderr, /already has a canary of 1\.1\.0; one candidate at a time/);
    assert.equal((await get('shown')).metadata.generation, g);
  });
});
