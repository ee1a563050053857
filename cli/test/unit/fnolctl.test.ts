// fnolctl's command line without a cluster: the command table, help, its own
// version, usage errors (exit 2) and the kubeconfig, context and namespace flags.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMMANDS, main, progressivePlan } from '../../src/fnolctl';
import { kubeConfigFrom, namespaceFrom } from '../../src/command';

/** Runs main with console.log/error captured. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(argv, (l) => out.push(l));
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function kubeconfig(): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'fnolctl-unit-')), 'config');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'a', cluster: { server: 'https://127.0.0.1:1' } },
        { name: 'b', cluster: { server: 'https://127.0.0.1:2' } },
      ],
      users: [{ name: 'u', user: { token: 'not-a-real-token' } }],
      contexts: [
        { name: 'dev', context: { cluster: 'a', user: 'u', namespace: 'claims-dev' } },
        { name: 'bare', context: { cluster: 'b', user: 'u' } },
      ],
      'current-context': 'dev',
    }),
  );
  return file;
}

describe('fnolctl command line', function () {
  it('--help lists every command of the table; COMMAND --help and help COMMAND print its usage', async function () {
    const top = await run('--help');
    assert.equal(top.code, 0);
    assert.deepEqual(Object.keys(COMMANDS), ['promote', 'rollback', 'status', 'score', 'logs']);
    for (const name of Object.keys(COMMANDS)) {
      const line = top.out.split('\n').find((l) => l.startsWith(`  ${name} `));
      assert.equal(line?.replace(/ +/g, ' '), `  ${name} ${COMMANDS[name]!.summary}`.replace(/ +/g, ' '));
      for (const argv of [
        [name, '--help'],
        ['help', name],
        ['-n', 'x', name, '-h'],
      ]) {
        const own = await run(...argv);
        assert.equal(own.code, 0, argv.join(' '));
        assert.ok(
          own.out.startsWith(`usage: fnolctl ${name} `),
          `${argv.join(' ')}: ${own.out.slice(0, 80)}`,
        );
      }
    }
  });

  it("--version prints the tool's version, not a model version", async function () {
    const v = await run('--version');
    assert.equal(v.code, 0);
    assert.match(v.out, /^fnolctl \d+\.\d+\.\d+ \(source\)$/);
    const misuse = await run('promote', 'fnol', '--version', '1.1.0');
    assert.equal(misuse.code, 2);
    assert.match(misuse.err, /--version prints fnolctl's own version .* --model-version/);
  });

  it('usage errors exit 2 with the reason and the usage', async function () {
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [['frob'], /unknown command "frob"/],
      [['status', 'x', '--from', 'p.json'], /Unknown option '--from'/],
      [['status', 'x', '-o', 'xml'], /-o\/--output must be one of json, yaml, table, got "xml"/],
      [['status', 'x', '--json', '-o', 'yaml'], /--json and -o yaml contradict each other/],
      [['promote', 'x', '-n', 'Bad_NS', '--from', 'p.json'], /cannot read the publish result p\.json/],
      [['promote', 'x', '--model-version', '1.0.0'], /all of --model-version, --uri and --sha256/],
      [['rollback', 'x', '--timeout', '0'], /--timeout must be a positive number of seconds, got "0"/],
      [['score'], /score needs --url/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, message, argv.join(' '));
      assert.match(r.err, /usage: fnolctl /, argv.join(' '));
    }
  });

  it('a bad namespace name and an unknown context are usage errors, before any request', async function () {
    const file = kubeconfig();
    const ns = await run('status', 'x', '-n', 'Bad_NS', '--kubeconfig', file);
    assert.equal(ns.code, 2);
    assert.match(ns.err, /-n\/--namespace "Bad_NS" is not a namespace name/);
    const ctx = await run('status', 'x', '--kubeconfig', file, '--context', 'prod');
    assert.equal(ctx.code, 2);
    assert.match(ctx.err, /--context prod is not in the kubeconfig; its contexts: dev, bare/);
  });

  it('--kubeconfig and --context pick the cluster; the namespace comes from -n, the context, or "default"', function () {
    const file = kubeconfig();
    const dev = kubeConfigFrom({ kubeconfig: file });
    assert.equal(dev.getCurrentCluster()?.server, 'https://127.0.0.1:1');
    assert.equal(
      namespaceFrom({}, () => dev),
      'claims-dev',
    );
    assert.equal(
      namespaceFrom({ namespace: 'claims' }, () => dev),
      'claims',
    );
    const bare = kubeConfigFrom({ kubeconfig: file, context: 'bare' });
    assert.equal(bare.getCurrentCluster()?.server, 'https://127.0.0.1:2');
    assert.equal(
      namespaceFrom({}, () => bare),
      'default',
    );
    assert.throws(
      () => kubeConfigFrom({ kubeconfig: path.join(path.dirname(file), 'missing') }),
      /check the --kubeconfig path/,
    );
  });

  it('the pipeline helper reads the progressive flags with the promote command in front', function () {
    const plan = progressivePlan([
      'promote',
      '--mirror',
      '100',
      '--canary',
      '10,50',
      '--step-seconds',
      '300',
    ]);
    assert.deepEqual(
      plan?.steps.map((s) => [s.mirrorPercent, s.trafficPercent]),
      [
        [100, 0],
        [100, 10],
        [100, 50],
      ],
    );
    assert.equal(progressivePlan(['promote']), undefined);
  });

  it('score: a URL nothing answers on is an error naming the reason, exit 1', async function () {
    // A port that was free a moment ago: nothing listens on it.
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    await new Promise((r) => server.close(r));
    const r = await run('score', '--url', `http://127.0.0.1:${port}`, '--retries', '0');
    assert.equal(r.code, 1);
    assert.match(r.err, /POST http:\/\/127\.0\.0\.1:\d+\/score: fetch failed \(ECONNREFUSED\); check --url/);
  });
});
