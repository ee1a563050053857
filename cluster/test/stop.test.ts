// The local story stops as cleanly as it starts, tried the way a new user hits
// it: the parts the demo starts (the cluster, the ingress controller,
// Prometheus, a model store on another address than loopback) plus the store a
// test run starts on loopback; one command, `npm run stop`, stops them all and
// cluster/check-clean.sh then finds nothing. Before the stop the same check
// names each of them, so it can fail.
//
// It stops the shared cluster, so it runs only when this run started it (a
// cluster that was running before holds someone's state), and starts it again
// afterwards, with the loopback store, for the suites that follow.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { useCluster } from '../../test/support/cluster';
import { repoRoot as ROOT } from '../../test/support/repo';

interface Run {
  code: number;
  output: string;
}

/** Runs a project script, output captured (stdout and stderr together). */
function script(file: string, args: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(ROOT, file), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, output }));
  });
}

async function ok(file: string, args: string[] = [], env: Record<string, string> = {}): Promise<string> {
  const run = await script(file, args, env);
  assert.equal(run.code, 0, `${file} ${args.join(' ')} failed:\n${run.output}`);
  return run.output;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// The demo's store listens on the real node's bridge address; without the real
// node a second loopback address stands in for it: another address, another store.
const DEMO_STORE = { FNOL_STORE_HOST: '127.0.0.2', FNOL_STORE_PORT: '10000' };
const TEST_STORE = { FNOL_STORE_HOST: '127.0.0.1', FNOL_STORE_PORT: '10000' };
const pidFile = (s: typeof DEMO_STORE) =>
  path.join(ROOT, '.azurite', `${s.FNOL_STORE_HOST}-${s.FNOL_STORE_PORT}`, 'azurite.pid');
const pidOf = (s: typeof DEMO_STORE) => Number(readFileSync(pidFile(s), 'utf8').trim());

describe('npm run stop: one command stops everything the demo and a test run started', function () {
  this.timeout(600_000);
  let testStoreWasRunning = false;
  let ran = false;

  before(async function () {
    const cluster = await useCluster(this);
    if (!cluster.startedByThisRun) {
      console.log('      skipped: the cluster ran before this run; stopping it would lose its state');
      this.skip();
    }
    testStoreWasRunning = existsSync(pidFile(TEST_STORE)) && alive(pidOf(TEST_STORE));
  });

  after(async function () {
    if (!ran) return;
    // The suites after this one expect the cluster (and a store the run started) back.
    await ok('cluster/up.sh');
    if (testStoreWasRunning) await ok('store/up.sh', [], TEST_STORE);
  });

  it('a second store on another address gets its own pid file; the first one is untouched', async function () {
    ran = true;
    await ok('store/up.sh', [], DEMO_STORE);
    const demoPid = pidOf(DEMO_STORE);
    await ok('store/up.sh', [], TEST_STORE);
    const testPid = pidOf(TEST_STORE);
    assert.notEqual(pidFile(DEMO_STORE), pidFile(TEST_STORE));
    assert.notEqual(demoPid, testPid);
    assert.equal(pidOf(DEMO_STORE), demoPid, "the second start rewrote the first store's pid file");
    assert.ok(alive(demoPid) && alive(testPid));
    // Starting the same store again changes nothing.
    assert.match(await ok('store/up.sh', [], DEMO_STORE), /model store already running: .* \(pid \d+\)/);
    assert.equal(pidOf(DEMO_STORE), demoPid);
  });

  it('check-clean names the ingress controller, Prometheus and both stores; npm run stop leaves nothing', async function () {
    await ok('cluster/ingress/up.sh');
    await ok('cluster/monitoring/up.sh');
    const stores = [pidOf(DEMO_STORE), pidOf(TEST_STORE)];

    const before = await script('cluster/check-clean.sh');
    assert.equal(before.code, 1, `check-clean found nothing with everything running:\n${before.output}`);
    assert.match(before.output, /traefik/, 'the ingress controller is not named');
    assert.match(before.output, /\(Prometheus\)|prometheus/, 'Prometheus is not named');
    for (const pid of stores) {
      assert.match(
        before.output,
        new RegExp(`process ${pid} \\(model store\\)`),
        `store ${pid} is not named`,
      );
    }

    // The line the demo prints is the command a user runs.
    const demo = readFileSync(path.join(ROOT, 'scripts/demo.sh'), 'utf8');
    assert.match(demo, /info "stop +npm run stop /);
    const stop = await script('scripts/stop.sh');
    assert.equal(stop.code, 0, stop.output);
    assert.match(stop.output, /nothing of the local cluster is left/);
    for (const pid of stores) assert.ok(!alive(pid), `model store ${pid} still runs`);

    const after = await script('cluster/check-clean.sh');
    assert.equal(after.code, 0, after.output);
    // Stopping again is harmless.
    const again = await script('scripts/stop.sh');
    assert.equal(again.code, 0, again.output);
  });
});
