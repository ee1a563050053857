/**
 * Alerts and dashboards as code (manifests/monitoring/):
 * - the rule files pass `promtool check rules`, and `promtool test rules` runs
 *   every unit-test file in tests/ (input series, the alerts expected and the
 *   ones that must stay quiet); every alert has a firing and a quiet case;
 * - every alert has a severity, a summary, a description and a runbook_url
 *   naming a section of docs/operations.md;
 * - prometheusrule.yaml is what the rule files give (npm run monitoring:rules);
 * - every metric a rule or a dashboard query reads is one the scorer or the
 *   operator exports (their registries, scorer/src/metrics.ts and
 *   operator/src/metrics.ts) or a rule records;
 * - the dashboard parses, and every panel has a data source and queries;
 * - the PodMonitors and scrape configuration select the pods, ports and
 *   annotations the operator and manifests/deployment.yaml give.
 *
 * promtool comes from Debian's prometheus package (scripts/prometheus.sh
 * unpacks it into ~/.cache/fnol/prometheus when it is not there).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { desiredDeployment } from '../../operator/src/reconcilers/deployment';
import { fnolModel, testConfig } from '../../operator/test/fixtures';
import {
  loadRuleGroups,
  MONITORING_DIR,
  PROMETHEUS_RULE_FILE,
  renderPrometheusRule,
  ruleFiles,
  type Rule,
} from '../../scripts/monitoring-rules';
import { podTargets } from '../../cluster/monitoring/pod-discovery';
import { renderConfig } from '../../cluster/monitoring/render-config';
import { exportedSeries, metricNames, SCRAPE_SERIES } from './metric-names';

const ROOT = path.resolve(__dirname, '..', '..');
const TESTS_DIR = path.join(MONITORING_DIR, 'tests');
const DASHBOARD = path.join(MONITORING_DIR, 'dashboards', 'fnol.json');
const OPERATIONS = path.join(ROOT, 'docs', 'operations.md');
const SEVERITIES = new Set(['critical', 'warning', 'info']);

interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[];
}
interface PromtoolTestFile {
  rule_files: string[];
  tests: Array<{ name?: string; alert_rule_test?: AlertTest[] }>;
}

const testFiles = (): string[] =>
  readdirSync(TESTS_DIR)
    .filter((f) => f.endsWith('.test.yaml'))
    .sort()
    .map((f) => path.join(TESTS_DIR, f));

const alerts = (): Rule[] => loadRuleGroups().flatMap((g) => g.rules.filter((r) => r.alert));

/** The anchors GitHub gives the headings of a Markdown file. */
function headingAnchors(file: string): Set<string> {
  const anchors = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    anchors.add(
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    );
  }
  return anchors;
}

describe('monitoring: alerting and recording rules', function () {
  let promtool: string;

  before(function () {
    this.timeout(10 * 60 * 1000); // a download on a fresh machine
    const bin = execFileSync('bash', [path.join(ROOT, 'scripts', 'prometheus.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    promtool = path.join(bin, 'promtool');
  });

  const run = (args: string[], cwd = ROOT) => spawnSync(promtool, args, { cwd, encoding: 'utf8' });

  it('promtool check rules accepts every rule file and the PrometheusRule groups', () => {
    const files = ruleFiles();
    assert.ok(files.length >= 2, `expected the scorer and operator rule files, found ${files.join(', ')}`);
    const r = run(['check', 'rules', ...files]);
    assert.equal(r.status, 0, `promtool check rules failed:\n${r.stdout}${r.stderr}`);
    // The PrometheusRule's spec is a rule file's content too.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnol-rules-'));
    try {
      const spec = (parse(readFileSync(PROMETHEUS_RULE_FILE, 'utf8')) as { spec: unknown }).spec;
      const file = path.join(dir, 'spec.yaml');
      writeFileSync(file, JSON.stringify(spec));
      const s = run(['check', 'rules', file]);
      assert.equal(
        s.status,
        0,
        `promtool check rules failed on the PrometheusRule's spec:\n${s.stdout}${s.stderr}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('promtool test rules passes every unit-test file', function () {
    this.timeout(120_000);
    const files = testFiles();
    assert.ok(files.length > 0, `no *.test.yaml in ${TESTS_DIR}`);
    const r = run(['test', 'rules', ...files.map((f) => path.relative(TESTS_DIR, f))], TESTS_DIR);
    assert.equal(r.status, 0, `promtool test rules failed:\n${r.stdout}${r.stderr}`);
  });

  it('promtool test rules fails when an alert expected to stay quiet fires (the harness can fail)', function () {
    this.timeout(60_000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnol-rules-'));
    try {
      const file = path.join(dir, 'wrong.test.yaml');
      writeFileSync(
        file,
        JSON.stringify({
          rule_files: [path.join(MONITORING_DIR, 'rules', 'scorer.rules.yaml')],
          evaluation_interval: '1m',
          tests: [
            {
              interval: '1m',
              input_series: [
                { series: 'up{job="fnol-scorer", namespace="claims", pod="a"}', values: '0x15' },
              ],
              alert_rule_test: [{ eval_time: '10m', alertname: 'FnolScorerDown', exp_alerts: [] }],
            },
          ],
        }),
      );
      const r = run(['test', 'rules', file], dir);
      assert.notEqual(r.status, 0, 'promtool accepted a test whose expectation is wrong');
      assert.match(r.stdout + r.stderr, /FnolScorerDown/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every rule file is loaded by a unit-test file, and every alert has a firing and a quiet case', () => {
    const loaded = new Set<string>();
    const firing = new Set<string>();
    const quiet = new Set<string>();
    for (const file of testFiles()) {
      const doc = parse(readFileSync(file, 'utf8')) as PromtoolTestFile;
      for (const rf of doc.rule_files) loaded.add(path.resolve(TESTS_DIR, rf));
      for (const t of doc.tests) {
        for (const a of t.alert_rule_test ?? []) {
          ((a.exp_alerts ?? []).length > 0 ? firing : quiet).add(a.alertname);
        }
      }
    }
    for (const f of ruleFiles())
      assert.ok(loaded.has(f), `${path.relative(ROOT, f)} is in no test file's rule_files`);
    for (const a of alerts()) {
      assert.ok(firing.has(a.alert!), `${a.alert}: no test expects it to fire`);
      assert.ok(quiet.has(a.alert!), `${a.alert}: no test expects it to stay quiet`);
    }
  });

  it('every alert has a severity, summary, description and a runbook_url that names a section of docs/operations.md', () => {
    const anchors = headingAnchors(OPERATIONS);
    const list = alerts();
    assert.ok(list.length >= 10, `expected the alerts of both rule files, found ${list.length}`);
    for (const a of list) {
      assert.ok(
        SEVERITIES.has(a.labels?.severity ?? ''),
        `${a.alert}: severity must be one of ${[...SEVERITIES]}`,
      );
      assert.ok(a.annotations?.summary, `${a.alert}: no summary`);
      assert.ok(a.annotations?.description, `${a.alert}: no description`);
      const m = /^docs\/operations\.md#([\w-]+)$/.exec(a.annotations?.runbook_url ?? '');
      assert.ok(
        m,
        `${a.alert}: runbook_url must be docs/operations.md#<anchor>, is ${a.annotations?.runbook_url}`,
      );
      assert.ok(anchors.has(m[1]!), `${a.alert}: docs/operations.md has no heading with anchor #${m[1]}`);
    }
  });

  it('rule groups have unique names, and every name a rule records or alerts on is unique', () => {
    const groups = loadRuleGroups();
    const names = groups.map((g) => g.name);
    assert.equal(new Set(names).size, names.length, `duplicate group names: ${names.join(', ')}`);
    const alertNames = alerts().map((a) => a.alert);
    assert.equal(
      new Set(alertNames).size,
      alertNames.length,
      `duplicate alert names: ${alertNames.join(', ')}`,
    );
  });

  it('every metric a rule reads is exported by the scorer or the operator, or recorded by a rule', async () => {
    const exported = await exportedSeries();
    const groups = loadRuleGroups();
    const recorded = new Set(groups.flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : []))));
    for (const g of groups) {
      for (const r of g.rules) {
        const names = metricNames(r.expr);
        assert.ok(names.length > 0, `${r.alert ?? r.record}: no metric found in ${r.expr}`);
        for (const n of names) {
          assert.ok(
            exported.has(n) || recorded.has(n) || SCRAPE_SERIES.includes(n),
            `${r.alert ?? r.record} reads ${n}, which neither the code exports nor a rule records`,
          );
        }
      }
    }
  });

  it('prometheusrule.yaml holds exactly the groups of the rule files (npm run monitoring:rules)', async () => {
    const groups = loadRuleGroups();
    const text = readFileSync(PROMETHEUS_RULE_FILE, 'utf8');
    assert.equal(text, await renderPrometheusRule(groups), 'stale: run npm run monitoring:rules');
    const manifest = parse(text) as { apiVersion: string; kind: string; spec: { groups: unknown } };
    assert.equal(manifest.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(manifest.kind, 'PrometheusRule');
    assert.deepEqual(manifest.spec.groups, groups);
  });
});

describe('monitoring: metric name extraction', () => {
  it('finds the selected metrics and skips functions, labels, durations and variables', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.99, sum by (le, pod) (rate(a_bucket{route=~"/score|x"}[$__rate_interval]))) / b offset 1h and on (instance) c:d > 2^30',
      ),
      ['a_bucket', 'b', 'c:d'],
    );
    assert.deepEqual(metricNames('label_values(scorer_model_info{job="x"}, namespace)'), [
      'scorer_model_info',
    ]);
  });
});

describe('monitoring: Grafana dashboard', () => {
  interface Target {
    expr?: string;
    datasource?: { type?: string; uid?: string };
  }
  interface Panel {
    id: number;
    type: string;
    title: string;
    datasource?: { type?: string; uid?: string };
    targets?: Target[];
    gridPos?: unknown;
  }
  const dashboard = () =>
    JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      uid: string;
      title: string;
      panels: Panel[];
      templating: { list: Array<{ name: string; type: string; query?: string | { query: string } }> };
    };

  it('parses, and every panel has a Prometheus data source, a position and queries', () => {
    const d = dashboard();
    assert.ok(d.uid && d.title, 'the dashboard needs a uid and a title');
    assert.ok(
      d.templating.list.some(
        (v) => v.name === 'datasource' && v.type === 'datasource' && v.query === 'prometheus',
      ),
      'a datasource variable of type prometheus lets the import choose the data source',
    );
    const panels = d.panels.filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 10, `only ${panels.length} panels`);
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids must be unique');
    for (const p of panels) {
      assert.equal(p.datasource?.type, 'prometheus', `panel "${p.title}": no Prometheus data source`);
      assert.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}": data source is not the variable`);
      assert.ok(p.gridPos, `panel "${p.title}": no gridPos`);
      assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}": no targets`);
      for (const t of p.targets) {
        assert.ok(t.expr && t.expr.trim(), `panel "${p.title}": a target without a query`);
        assert.equal(
          t.datasource?.uid,
          '${datasource}',
          `panel "${p.title}": a target's data source is not the variable`,
        );
      }
    }
  });

  it('covers requests, errors, latency, predictions, model versions, overload and the operator', () => {
    const exprs = dashboard()
      .panels.flatMap((p) => p.targets ?? [])
      .map((t) => t.expr ?? '')
      .join('\n');
    for (const m of [
      'scorer_http_requests_total',
      'scorer_http_request_duration_seconds_bucket',
      'scorer_records_scored_total',
      'scorer_prediction_value_bucket',
      'scorer_model_info',
      'scorer_requests_refused_total',
      'fnol_operator_reconcile_total',
      'fnol_operator_workqueue_depth',
      'fnol_operator_leader',
    ]) {
      assert.ok(exprs.includes(m), `no panel shows ${m}`);
    }
  });

  it('every metric in every query and variable is one the scorer or the operator exports', async () => {
    const exported = await exportedSeries();
    const d = dashboard();
    const queries: Array<[string, string]> = [];
    for (const p of d.panels)
      for (const t of p.targets ?? []) queries.push([`panel "${p.title}"`, t.expr ?? '']);
    for (const v of d.templating.list) {
      if (v.type !== 'query') continue;
      queries.push([`variable ${v.name}`, typeof v.query === 'string' ? v.query : (v.query?.query ?? '')]);
    }
    for (const [where, q] of queries) {
      const names = metricNames(q);
      assert.ok(names.length > 0, `${where}: no metric in ${q}`);
      for (const n of names) {
        assert.ok(
          exported.has(n) || SCRAPE_SERIES.includes(n),
          `${where} reads ${n}, which the code does not export`,
        );
      }
    }
  });
});

describe('monitoring: scraping', () => {
  interface PodMonitor {
    kind: string;
    metadata: { name: string };
    spec: {
      selector: { matchLabels: Record<string, string> };
      podMetricsEndpoints: Array<{ port: string; path: string }>;
    };
  }
  const podMonitors = () =>
    parseAllDocuments(readFileSync(path.join(MONITORING_DIR, 'podmonitors.yaml'), 'utf8')).map(
      (d) => d.toJS() as PodMonitor,
    );

  it('the scorer pods the operator creates carry the scrape annotations and what the PodMonitor selects', () => {
    const fm = fnolModel();
    const template = desiredDeployment(fm, testConfig).spec!.template;
    const annotations = template.metadata?.annotations ?? {};
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/port'], '8080');
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    const pm = podMonitors().find((m) => m.metadata.name === 'fnol-scorer')!;
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) {
      assert.equal(
        template.metadata?.labels?.[k],
        v,
        `scorer pods lack the label ${k}=${v} the PodMonitor selects`,
      );
    }
    const ports = template.spec!.containers.flatMap((c) => c.ports ?? []);
    const endpoint = pm.spec.podMetricsEndpoints[0]!;
    const port = ports.find((p) => p.name === endpoint.port);
    assert.ok(port, `no container port named ${endpoint.port}`);
    assert.equal(String(port.containerPort), annotations['prometheus.io/port']);
    assert.equal(endpoint.path, annotations['prometheus.io/path']);
  });

  it("the operator's pods (manifests/deployment.yaml) carry the scrape annotations and what its PodMonitor selects", () => {
    const dep = parse(readFileSync(path.join(ROOT, 'manifests', 'deployment.yaml'), 'utf8')) as {
      spec: {
        template: {
          metadata: { labels: Record<string, string>; annotations: Record<string, string> };
          spec: { containers: Array<{ ports?: Array<{ name: string; containerPort: number }> }> };
        };
      };
    };
    const t = dep.spec.template;
    assert.equal(t.metadata.annotations['prometheus.io/scrape'], 'true');
    const pm = podMonitors().find((m) => m.metadata.name === 'fnol-operator')!;
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) {
      assert.equal(t.metadata.labels[k], v, `operator pods lack the label ${k}=${v} the PodMonitor selects`);
    }
    const endpoint = pm.spec.podMetricsEndpoints[0]!;
    const port = t.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === endpoint.port);
    assert.ok(port, `no operator container port named ${endpoint.port}`);
    assert.equal(String(port.containerPort), t.metadata.annotations['prometheus.io/port']);
    assert.equal(endpoint.path, t.metadata.annotations['prometheus.io/path']);
  });

  it('the scrape configuration defines the jobs the rules read', () => {
    const doc = parse(readFileSync(path.join(MONITORING_DIR, 'scrape-configs.yaml'), 'utf8')) as {
      scrape_configs: Array<{ job_name: string; kubernetes_sd_configs: Array<{ role: string }> }>;
    };
    const jobs = doc.scrape_configs.map((c) => c.job_name).sort();
    assert.deepEqual(jobs, ['fnol-operator', 'fnol-scorer']);
    for (const c of doc.scrape_configs) assert.equal(c.kubernetes_sd_configs[0]?.role, 'pod');
    const ruleText = ruleFiles()
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    for (const job of ruleText.matchAll(/job="([^"]+)"/g))
      assert.ok(jobs.includes(job[1]!), `rules read job ${job[1]}`);
  });
});

describe('monitoring: local pod discovery (cluster/monitoring/)', () => {
  it('gives the labels Kubernetes discovery (role pod) gives: one target per container port', () => {
    const pod = desiredDeployment(fnolModel(), testConfig).spec!.template;
    const groups = podTargets([
      {
        metadata: {
          name: 'fnol-abc',
          namespace: 'claims',
          labels: pod.metadata!.labels!,
          annotations: pod.metadata!.annotations!,
        },
        spec: { nodeName: 'n1', containers: pod.spec!.containers as never },
        status: { phase: 'Running', podIP: '10.1.2.3', conditions: [{ type: 'Ready', status: 'True' }] },
      },
      // Not scheduled yet: no address, no target.
      {
        metadata: { name: 'pending', namespace: 'claims' },
        spec: { containers: [{ name: 'c' }] },
        status: { phase: 'Pending' },
      },
    ]);
    assert.equal(groups.length, 1);
    const g = groups[0]!;
    assert.deepEqual(g.targets, ['10.1.2.3:8080']);
    assert.equal(g.labels.__meta_kubernetes_namespace, 'claims');
    assert.equal(g.labels.__meta_kubernetes_pod_name, 'fnol-abc');
    assert.equal(g.labels.__meta_kubernetes_pod_phase, 'Running');
    assert.equal(g.labels.__meta_kubernetes_pod_ready, 'True');
    assert.equal(g.labels.__meta_kubernetes_pod_label_app_kubernetes_io_name, 'fnol-scorer');
    assert.equal(g.labels.__meta_kubernetes_pod_label_app_kubernetes_io_instance, 'fnol');
    assert.equal(g.labels.__meta_kubernetes_pod_annotation_prometheus_io_scrape, 'true');
    assert.equal(g.labels.__meta_kubernetes_pod_annotation_prometheus_io_port, '8080');
    assert.equal(g.labels.__meta_kubernetes_pod_container_port_name, 'http');
  });

  it('the local configuration keeps the scrape jobs and their relabeling, with file discovery, and passes promtool check config', function () {
    this.timeout(60_000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnol-prom-'));
    try {
      const targets = path.join(dir, 'targets.json');
      writeFileSync(targets, '[]');
      const text = renderConfig({ targetsFile: targets });
      const config = parse(text) as {
        rule_files: string[];
        scrape_configs: Array<{
          job_name: string;
          file_sd_configs: Array<{ files: string[] }>;
          relabel_configs: unknown;
        }>;
      };
      const source = parse(readFileSync(path.join(MONITORING_DIR, 'scrape-configs.yaml'), 'utf8')) as {
        scrape_configs: Array<{ job_name: string; relabel_configs: unknown }>;
      };
      assert.deepEqual(config.rule_files, ruleFiles());
      assert.deepEqual(
        config.scrape_configs.map((c) => [c.job_name, c.relabel_configs, c.file_sd_configs[0]?.files]),
        source.scrape_configs.map((c) => [c.job_name, c.relabel_configs, [targets]]),
      );
      const file = path.join(dir, 'prometheus.yml');
      writeFileSync(file, text);
      const bin = execFileSync('bash', [path.join(ROOT, 'scripts', 'prometheus.sh')], {
        encoding: 'utf8',
      }).trim();
      const r = spawnSync(path.join(bin, 'promtool'), ['check', 'config', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `promtool check config failed:\n${r.stdout}${r.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
