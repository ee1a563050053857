/**
 * The operator install as scripts/render-operator.sh renders it with real
 * `kubectl kustomize` (the local cluster's pinned kubectl when it is built, else
 * kubectl on PATH): the pipeline's path (manifests/ with the run's images) and
 * the local cluster's (cluster/operator/ with the locally built images, as
 * cluster/operator/up.sh calls it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import YAML from 'yaml';
import { ROOT } from '../../src/schema';

const SCRIPT = path.join(ROOT, 'scripts', 'render-operator.sh');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function render(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [SCRIPT, '--out', '-', ...args],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number')
          reject(new Error(`bash ${SCRIPT} did not run: ${err.message}`));
        else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

async function renderOk(args: string[]): Promise<Obj[]> {
  const run = await render(args);
  assert.equal(run.code, 0, run.stderr);
  return YAML.parseAllDocuments(run.stdout).map((d) => d.toJS() as Obj);
}

/** Plain `kubectl kustomize DIR` with the kubectl the script picks. */
async function kustomize(dir: string): Promise<Obj[]> {
  const text = await new Promise<string>((resolve, reject) => {
    execFile(
      'bash',
      [
        '-c',
        'source cluster/lib.sh; k="${KUBECTL:-$K8S_BIN/kubectl}"; [ -x "$k" ] || k=kubectl; "$k" kustomize "$1"',
        '_',
        dir,
      ],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`kubectl kustomize ${dir}: ${stderr}`)) : resolve(stdout),
    );
  });
  return YAML.parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}
interface Container {
  name: string;
  image: string;
  env: { name: string; value?: string }[];
}

function operatorContainer(docs: Obj[]): Container {
  const deployment = docs.find(
    (d) => d.kind === 'Deployment' && d.metadata.name === 'fnol-operator',
  ) as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'operator');
  assert.ok(container, 'the Deployment fnol-operator has a container named operator');
  return container;
}

function envOf(container: Container, name: string): string | undefined {
  return container.env.find((e) => e.name === name)?.value;
}

const key = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/**
 * The paths where two renders differ. Documents are keyed by kind, namespace
 * and name, containers and env entries by name, so a difference is named by
 * what it is (…/containers/operator/env/MODEL_LOCAL_MODE), not by position.
 */
function differences(a: Obj[], b: Obj[]): string[] {
  const byName = (list: unknown[]): unknown =>
    list.every(
      (x) => typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string',
    )
      ? Object.fromEntries(list.map((x) => [(x as { name: string }).name, x]))
      : list;
  const normal = (v: unknown, parent: string): unknown => {
    if (Array.isArray(v)) {
      const items = v.map((x) => normal(x, ''));
      return parent === 'containers' || parent === 'env' ? byName(items) : items;
    }
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x, k)]));
    return v;
  };
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, at: string): void => {
    const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
    if (isObj(x) && isObj(y) && Array.isArray(x) === Array.isArray(y)) {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) walk(x[k], y[k], `${at}/${k}`);
    } else if (JSON.stringify(x) !== JSON.stringify(y)) out.push(at);
  };
  walk(
    Object.fromEntries(a.map((o) => [key(o), normal(o, '')])),
    Object.fromEntries(b.map((o) => [key(o), normal(o, '')])),
    '',
  );
  return out.sort();
}

describe('pipeline: operator install rendered with the run images (kubectl kustomize)', function () {
  this.timeout(60_000);
  const operator = 'fnolacr.azurecr.io/fnol/operator:4711';
  const scorer = 'fnolacr.azurecr.io/fnol/scorer:4711';

  it('sets the operator image and FNOL_SCORER_IMAGE, keeps every resource of the kustomization', async function () {
    const docs = await renderOk(['--operator-image', operator, '--scorer-image', scorer]);
    const plain = await kustomize('manifests');
    assert.deepEqual(docs.map(key), plain.map(key), 'the same objects as kubectl kustomize manifests/');
    const kinds = docs.map((d) => d.kind);
    for (const kind of ['Namespace', 'ServiceAccount', 'ClusterRole', 'Deployment', 'NetworkPolicy'])
      assert.ok(kinds.includes(kind), `${kind} in ${kinds.join()}`);
    assert.ok(!kinds.includes('Kustomization'));
    const container = operatorContainer(docs);
    assert.equal(container.image, operator);
    assert.equal(envOf(container, 'FNOL_SCORER_IMAGE'), scorer);
    assert.deepEqual(
      differences(plain, docs),
      [
        '/Deployment/fnol-system/fnol-operator/spec/template/spec/containers/operator/env/FNOL_SCORER_IMAGE/value',
        '/Deployment/fnol-system/fnol-operator/spec/template/spec/containers/operator/image',
      ],
      'nothing but the two images changes',
    );
  });

  it('pins images by digest when the references carry one', async function () {
    const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
    const docs = await renderOk([
      '--operator-image',
      `fnolacr.azurecr.io/fnol/operator@${digest}`,
      '--scorer-image',
      `fnolacr.azurecr.io/fnol/scorer:4711@${digest}`,
    ]);
    const container = operatorContainer(docs);
    assert.equal(container.image, `fnolacr.azurecr.io/fnol/operator@${digest}`);
    assert.equal(envOf(container, 'FNOL_SCORER_IMAGE'), `fnolacr.azurecr.io/fnol/scorer:4711@${digest}`);
  });

  it('refuses something that is not an image reference, or a reference with neither tag nor digest', async function () {
    const bad = await render(['--operator-image', 'bad image', '--scorer-image', scorer]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--operator-image "bad image" is not an image reference/);
    assert.equal(bad.stdout, '');
    const untagged = await render([
      '--operator-image',
      operator,
      '--scorer-image',
      'fnolacr.azurecr.io/fnol/scorer',
    ]);
    assert.notEqual(untagged.code, 0);
    assert.match(
      untagged.stderr,
      /--scorer-image "fnolacr.azurecr.io\/fnol\/scorer" has neither a tag nor a digest/,
    );
    const env = await render(['--operator-image', operator, '--scorer-image', scorer, '--env', 'NO VALUE']);
    assert.notEqual(env.code, 0);
    assert.match(env.stderr, /--env "NO VALUE" is not NAME=VALUE/);
  });

  it('renders the local cluster install differing from the pipeline one only in images, placement and local mode', async function () {
    const pipeline = await renderOk(['--operator-image', operator, '--scorer-image', scorer]);
    // As cluster/operator/up.sh renders it (the node's default address).
    const local = await renderOk([
      '--base',
      'cluster/operator',
      '--operator-image',
      'fnol.local/operator:0123456789ab',
      '--scorer-image',
      'fnol.local/scorer:ba9876543210',
      '--env',
      'WATCH_NAMESPACE=fnol-demo',
      '--env',
      'MODEL_ALLOWED_HOSTS=*.blob.core.windows.net,10.250.0.1',
    ]);
    const deployment = '/Deployment/fnol-system/fnol-operator/spec/template/spec';
    const env = `${deployment}/containers/operator/env`;
    assert.deepEqual(
      differences(pipeline, local),
      [
        `${deployment}/containers/operator/env/FNOL_SCORER_IMAGE/value`,
        `${env}/MODEL_ALLOWED_HOSTS/value`,
        `${env}/MODEL_LOCAL_MODE/value`,
        `${env}/MODEL_STORE_PORTS`,
        `${env}/PROGRESS_DEADLINE_SECONDS`,
        `${env}/WATCH_NAMESPACE/value`,
        `${deployment}/containers/operator/image`,
        `${deployment}/nodeSelector`,
        `${deployment}/tolerations`,
        '/NetworkPolicy/fnol-system/fnol-operator/spec/egress/1/ports/2',
      ].sort(),
    );
    const p = operatorContainer(pipeline);
    const l = operatorContainer(local);
    assert.equal(l.image, 'fnol.local/operator:0123456789ab');
    assert.equal(envOf(l, 'FNOL_SCORER_IMAGE'), 'fnol.local/scorer:ba9876543210');
    assert.equal(envOf(p, 'MODEL_LOCAL_MODE'), 'false');
    assert.equal(envOf(l, 'MODEL_LOCAL_MODE'), 'true');
    assert.equal(envOf(p, 'WATCH_NAMESPACE'), '');
    assert.equal(envOf(l, 'WATCH_NAMESPACE'), 'fnol-demo');
    assert.equal(envOf(p, 'MODEL_ALLOWED_HOSTS'), '*.blob.core.windows.net');
    assert.equal(envOf(l, 'MODEL_ALLOWED_HOSTS'), '*.blob.core.windows.net,10.250.0.1');
    const policy = local.find(
      (d) => d.kind === 'NetworkPolicy' && d.metadata.name === 'fnol-operator',
    ) as unknown as {
      spec: { egress: { ports: { port: number }[] }[] };
    };
    assert.equal(policy.spec.egress[1]?.ports[2]?.port, 10000, 'the local model store port');
  });
});
