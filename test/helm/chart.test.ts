/**
 * The Helm chart (charts/fnol-operator/) without a cluster: helm lint, helm
 * template with the default and the namespaced values, values the schema or
 * the templates refuse, and the same objects as the kustomize install
 * (manifests/, rendered by scripts/render-operator.sh with real kustomize),
 * apart from the differences listed in INTENDED_DIFFERENCES (docs/helm.md).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { GROUP, KIND } from '@fnol/api';
import { CHART_COPIES, staleCopies } from '../../scripts/chart-sync';
import {
  CHART,
  HELM_BUILD_TIMEOUT_MS,
  NAMESPACED_EXAMPLE,
  ROOT,
  helm,
  helmPath,
  objectKey,
  renderChart,
  renderKustomize,
  type K8sObject,
} from '../support/helm';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const IMAGES = {
  images: {
    operator: { repository: 'fnolacr.azurecr.io/fnol/operator', digest: DIGEST_A },
    scorer: { repository: 'fnolacr.azurecr.io/fnol/scorer', digest: DIGEST_B },
  },
};
const OPERATOR_REF = `fnolacr.azurecr.io/fnol/operator@${DIGEST_A}`;
const SCORER_REF = `fnolacr.azurecr.io/fnol/scorer@${DIGEST_B}`;

/**
 * What the chart does differently from manifests/, on purpose (docs/helm.md):
 * Helm's four labels on every object; no Namespace object (helm install
 * --namespace: the namespace is created, and labelled for Pod Security, before
 * the install); a PodDisruptionBudget that kustomize does not have.
 */
const HELM_LABELS = [
  'helm.sh/chart',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
];
const ONLY_IN_KUSTOMIZE = ['Namespace//fnol-system'];
const ONLY_IN_CHART = ['PodDisruptionBudget/fnol-system/fnol-operator'];

function withoutHelmLabels(o: K8sObject): K8sObject {
  const copy = structuredClone(o);
  const labels = copy.metadata.labels ?? {};
  for (const l of HELM_LABELS) {
    assert.ok(l in labels, `${objectKey(o)} has no label ${l}`);
    delete labels[l];
  }
  return copy;
}

/**
 * The admission policy's CEL sits in folded YAML scalars, and YAML libraries
 * fold a more-indented line differently (kustomize's writes one line break
 * where the source, read by helm or here, gives two). CEL ignores whitespace:
 * its strings are compared with runs of whitespace as one space.
 */
function celWhitespace(o: K8sObject): K8sObject {
  if (o.kind !== 'ValidatingAdmissionPolicy') return o;
  const squash = (v: unknown): unknown =>
    typeof v === 'string'
      ? v.replace(/\s+/g, ' ').trim()
      : Array.isArray(v)
        ? v.map(squash)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, squash(x)]))
          : v;
  return { ...o, spec: squash(o.spec) };
}

function byKey(objects: K8sObject[]): Map<string, K8sObject> {
  const map = new Map<string, K8sObject>();
  for (const o of objects) {
    assert.ok(!map.has(objectKey(o)), `${objectKey(o)} rendered twice`);
    map.set(objectKey(o), o);
  }
  return map;
}

/** Asserts both renderings hold the same objects, field for field, but for the intended differences. */
function assertSameInstall(chart: K8sObject[], kustomize: K8sObject[]): void {
  const c = byKey(chart.map(withoutHelmLabels).map(celWhitespace));
  const k = byKey(kustomize.map(celWhitespace));
  for (const key of ONLY_IN_KUSTOMIZE) assert.ok(k.delete(key), `kustomize no longer renders ${key}`);
  for (const key of ONLY_IN_CHART) assert.ok(c.delete(key), `the chart no longer renders ${key}`);
  assert.deepEqual([...c.keys()].sort(), [...k.keys()].sort(), 'the two installs render different objects');
  for (const [key, object] of k)
    assert.deepEqual(c.get(key), object, `${key} differs between chart and kustomize`);
}

/** The fields of the rendered objects the tests read. */
interface DeploymentView {
  spec: {
    replicas: number;
    template: {
      spec: {
        securityContext: { runAsNonRoot: boolean; seccompProfile: { type: string } };
        containers: {
          image: string;
          env: { name: string; value?: string }[];
          resources: { limits?: Record<string, string> };
          securityContext: {
            allowPrivilegeEscalation: boolean;
            readOnlyRootFilesystem: boolean;
            capabilities: { drop: string[] };
          };
        }[];
      };
    };
  };
}
interface NetworkPolicyView {
  spec: { egress: { to: unknown[]; ports: { port: number }[] }[] };
}

/** The message of a helm template that must fail. */
function refused(values: Record<string, unknown>): string {
  try {
    renderChart(values);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`helm template accepted ${JSON.stringify(values)}`);
}

describe('Helm chart charts/fnol-operator', function () {
  before(function () {
    this.timeout(HELM_BUILD_TIMEOUT_MS);
    helmPath();
  });

  it('keeps its copies of the CRD, the admission policy and the monitoring objects identical to their sources', function () {
    assert.deepEqual(staleCopies(), [], 'run npm run chart:sync');
    // And the check can fail: a copy one byte off is reported.
    const root = mkdtempSync(path.join(os.tmpdir(), 'fnol-chart-sync-'));
    try {
      for (const [source, copy] of CHART_COPIES) {
        cpSync(path.join(ROOT, source), path.join(root, source));
        cpSync(path.join(ROOT, copy), path.join(root, copy));
      }
      const crdCopy = path.join(root, CHART_COPIES[0]![1]);
      writeFileSync(crdCopy, readFileSync(crdCopy, 'utf8') + '\n');
      assert.deepEqual(staleCopies(root), [CHART_COPIES[0]![1]]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('passes helm lint --strict with the default and the namespaced values', function () {
    this.timeout(60_000);
    for (const set of [[], ['--set', `rbac.namespaced=true,watchNamespace=${NAMESPACED_EXAMPLE}`]]) {
      const r = helm(['lint', '--strict', CHART, ...set]);
      assert.equal(r.status, 0, `helm lint ${set.join(' ')}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('renders the same objects as the kustomize install (manifests/), but for the listed differences', function () {
    this.timeout(60_000);
    assertSameInstall(renderChart(IMAGES), renderKustomize(OPERATOR_REF, SCORER_REF));
  });

  it('renders, namespaced, the same objects as manifests/ with the component manifests/namespaced/', function () {
    this.timeout(60_000);
    const chart = renderChart({ ...IMAGES, rbac: { namespaced: true }, watchNamespace: NAMESPACED_EXAMPLE });
    assertSameInstall(chart, renderKustomize(OPERATOR_REF, SCORER_REF, true));
    const kinds = chart.map((o) => o.kind);
    assert.ok(!kinds.includes('ClusterRole') && !kinds.includes('ClusterRoleBinding'), kinds.join(', '));
  });

  it('runs every pod under the restricted Pod Security Standard, with the images pinned by digest', function () {
    this.timeout(60_000);
    const deploy = renderChart(IMAGES).find((o) => o.kind === 'Deployment') as unknown as DeploymentView;
    const pod = deploy.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    for (const c of pod.containers) {
      assert.equal(c.image, OPERATOR_REF);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      const env = new Map(c.env.map((e) => [e.name, e.value]));
      assert.equal(env.get('FNOL_SCORER_IMAGE'), SCORER_REF);
    }
  });

  it('sets the operator from its values: replicas, watched namespace, model hosts, log level, resources, extra variables', function () {
    this.timeout(60_000);
    const objects = renderChart({
      ...IMAGES,
      replicas: 3,
      watchNamespace: 'claims',
      logLevel: 'debug',
      model: { allowedHosts: 'fnolprod.blob.core.windows.net' },
      resources: { limits: { cpu: '2', memory: '1Gi' } },
      extraEnv: [{ name: 'PROGRESS_DEADLINE_SECONDS', value: 60 }],
      networkPolicy: { egressCIDRs: ['10.20.0.4/32'], extraEgressPorts: [10000] },
      serviceAccount: { annotations: { 'azure.workload.identity/client-id': 'c0ffee' } },
    });
    const deploy = objects.find((o) => o.kind === 'Deployment') as unknown as DeploymentView;
    assert.equal(deploy.spec.replicas, 3);
    const c = deploy.spec.template.spec.containers[0]!;
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
    assert.equal(env.WATCH_NAMESPACE, 'claims');
    assert.equal(env.LOG_LEVEL, 'debug');
    assert.equal(env.MODEL_ALLOWED_HOSTS, 'fnolprod.blob.core.windows.net');
    assert.equal(env.PROGRESS_DEADLINE_SECONDS, '60');
    assert.deepEqual(c.resources.limits, { cpu: '2', memory: '1Gi' });
    // The ClusterRole stays: watching one namespace does not narrow rights by itself.
    assert.ok(objects.some((o) => o.kind === 'ClusterRole'));
    const policy = objects.find((o) => o.kind === 'NetworkPolicy') as unknown as NetworkPolicyView;
    assert.deepEqual(policy.spec.egress[1]!.to, [{ ipBlock: { cidr: '10.20.0.4/32' } }]);
    assert.deepEqual(
      policy.spec.egress[1]!.ports.map((p) => p.port),
      [443, 6443, 10000],
    );
    const sa = objects.find((o) => o.kind === 'ServiceAccount');
    assert.deepEqual(sa?.metadata.annotations, { 'azure.workload.identity/client-id': 'c0ffee' });
  });

  it('passes the trace export of the scorer pods to the operator as SCORER_TRACES_*, and nothing while it is off', function () {
    this.timeout(60_000);
    const envOf = (objects: K8sObject[]) => {
      const deploy = objects.find((o) => o.kind === 'Deployment') as unknown as DeploymentView;
      return Object.fromEntries(deploy.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
    };
    assert.deepEqual(
      Object.keys(envOf(renderChart())).filter((n) => n.startsWith('SCORER_TRACES_')),
      [],
    );
    const env = envOf(
      renderChart({
        scorerTracing: {
          endpoint: 'http://otel-collector.monitoring:4318',
          egress: {
            namespaces: ['monitoring'],
            podLabels: { 'app.kubernetes.io/name': 'otel-collector', component: 'gateway' },
            cidrs: ['10.0.40.0/24'],
          },
        },
      }),
    );
    assert.equal(env.SCORER_TRACES_ENDPOINT, 'http://otel-collector.monitoring:4318');
    assert.equal(env.SCORER_TRACES_EGRESS_NAMESPACES, 'monitoring');
    assert.equal(
      env.SCORER_TRACES_EGRESS_POD_LABELS,
      'app.kubernetes.io/name=otel-collector,component=gateway',
    );
    assert.equal(env.SCORER_TRACES_EGRESS_CIDRS, '10.0.40.0/24');
  });

  it('renders the PodMonitors and the alert rules of manifests/monitoring/ when asked, templates left intact', function () {
    this.timeout(60_000);
    assert.ok(!renderChart().some((o) => o.apiVersion.startsWith('monitoring.coreos.com')));
    const objects = renderChart({
      monitoring: { podMonitors: true, prometheusRule: true, labels: { release: 'prometheus' } },
    });
    const sources = [
      ...parseAllDocuments(readFileSync(path.join(ROOT, 'manifests/monitoring/podmonitors.yaml'), 'utf8')),
      ...parseAllDocuments(readFileSync(path.join(ROOT, 'manifests/monitoring/prometheusrule.yaml'), 'utf8')),
    ].map((d) => d.toJS() as K8sObject);
    for (const source of sources) {
      const got = objects.find((o) => o.kind === source.kind && o.metadata.name === source.metadata.name);
      assert.ok(got, `${source.kind} ${source.metadata.name} not rendered`);
      assert.deepEqual(got.spec, source.spec, `${source.kind} ${source.metadata.name}: spec differs`);
      assert.equal(got.metadata.labels?.release, 'prometheus');
    }
    // Alert annotations keep their Prometheus templates ({{ $labels.name }}).
    assert.match(JSON.stringify(objects), /\{\{ \$labels\.name \}\}/);
  });

  it('refuses bad values at install time with a message naming the value and what to do', function () {
    this.timeout(120_000);
    assert.match(
      refused({ images: { operator: { repository: 'fnol-operator', digest: 'sha256:1234' } } }),
      /images\.operator\.digest|\/images\/operator\/digest/,
    );
    assert.match(refused({ replica: 2 }), /replica/);
    assert.match(refused({ logLevel: 'verbose' }), /logLevel/);
    assert.match(refused({ networkPolicy: { egressCIDRs: ['10.0.0.0'] } }), /egressCIDRs/);
    assert.match(
      refused({ rbac: { namespaced: true } }),
      /rbac\.namespaced is true but watchNamespace is empty: set watchNamespace/,
    );
    assert.match(
      refused({ extraEnv: [{ name: 'LOG_LEVEL', value: 'debug' }] }),
      /extraEnv sets LOG_LEVEL.*set the value instead/,
    );
    assert.match(
      refused({ images: { operator: { repository: 'fnol-operator', tag: '', digest: '' } } }),
      /neither a tag nor a digest/,
    );
    assert.match(
      refused({ scorerTracing: { endpoint: 'http://otel-collector.monitoring:4318' } }),
      /scorerTracing\.endpoint is set but the scorer pods may not reach it/,
    );
    assert.match(
      refused({
        scorerTracing: { endpoint: 'http://user:pw@collector:4318', egress: { namespaces: ['monitoring'] } },
      }),
      /scorerTracing\.endpoint|\/scorerTracing\/endpoint/,
    );
    assert.match(
      refused({ extraEnv: [{ name: 'SCORER_TRACES_ENDPOINT', value: 'http://c:4318' }] }),
      /extraEnv sets SCORER_TRACES_ENDPOINT/,
    );
  });

  it('ships the Argo CD health check that docs/helm.md shows as the argocd-cm snippet', function () {
    const lua = readFileSync(path.join(CHART, 'files/argocd-health.lua'), 'utf8');
    const docs = readFileSync(path.join(ROOT, 'docs/helm.md'), 'utf8');
    const block = /```yaml\n(# argocd-cm[\s\S]*?)```/.exec(docs);
    assert.ok(block, 'docs/helm.md has no ```yaml block starting with "# argocd-cm"');
    const cm = parse(block[1]!) as { data: Record<string, string> };
    assert.equal(cm.data[`resource.customizations.health.${GROUP}_${KIND}`], lua);
  });
});
