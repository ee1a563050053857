// The pipeline's structural check: azure-pipelines.yml and its templates against
// Microsoft's Azure Pipelines schema, plus the project's own rules for it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { ROOT, allSteps, compileSchema, describeErrors, parsePipeline } from '../../src/schema';
import { progressivePlan } from '../../../cli/src/fnolctl';
import { DEFAULT_THRESHOLDS } from '../../../cli/src/canary';
import { BUNDLED_FNOLCTL } from '../support/deploy-stage';

const PIPELINE = path.join(ROOT, 'azure-pipelines.yml');
const TEMPLATES = ['pipeline/templates/deploy-stage.yml'];
const scripts = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

type Node = Record<string, unknown>;
const asNode = (v: unknown): Node => v as Node;
const stagesOf = (p: unknown): Node[] => asNode(p).stages as Node[];

function findTask(pipeline: unknown, task: string): Node {
  const hit = allSteps(pipeline).find((s) => s.step.task === task);
  assert.ok(hit, `no ${task} step in the pipeline`);
  return hit.step;
}

describe('azure-pipelines.yml against the Azure Pipelines schema', function () {
  let validate: ValidateFunction;

  before(function () {
    validate = compileSchema();
  });

  for (const file of ['azure-pipelines.yml', ...TEMPLATES]) {
    it(`${file} is valid`, function () {
      const ok = validate(parsePipeline(path.join(ROOT, file)));
      assert.ok(
        ok,
        `${file} does not match the schema:\n${describeErrors(validate.errors).slice(0, 8).join('\n')}`,
      );
    });
  }

  it('rejects a misspelled task input (Docker@2 `dockerfile` instead of `Dockerfile`)', function () {
    const pipeline = parsePipeline(PIPELINE);
    const docker = findTask(pipeline, 'Docker@2');
    const inputs = asNode(docker.inputs);
    assert.ok('Dockerfile' in inputs || 'command' in inputs);
    const build = allSteps(pipeline).find(
      (s) => s.step.task === 'Docker@2' && 'Dockerfile' in asNode(s.step.inputs),
    );
    assert.ok(build, 'no Docker@2 build step with a Dockerfile input');
    const buildInputs = asNode(build.step.inputs);
    buildInputs.dockerfile = buildInputs.Dockerfile;
    delete buildInputs.Dockerfile;
    assert.equal(validate(pipeline), false, 'the schema accepted a misspelled Docker@2 input');
    const messages = describeErrors(validate.errors).join('\n');
    assert.match(messages, /"additionalProperty":"dockerfile"/);
  });

  it('rejects an unknown task and an unknown stage key', function () {
    const pipeline = parsePipeline(PIPELINE);
    findTask(pipeline, 'NodeTool@0').task = 'NodeTool@9';
    assert.equal(validate(pipeline), false, 'the schema accepted task NodeTool@9');

    const other = parsePipeline(PIPELINE);
    const first = stagesOf(other)[0];
    assert.ok(first);
    first.dependson = 'Build';
    assert.equal(validate(other), false, 'the schema accepted the stage key `dependson`');
  });
});

describe('azure-pipelines.yml project rules', function () {
  const pipeline = parsePipeline(PIPELINE);
  const templates = TEMPLATES.map((t) => ({ file: t, doc: parsePipeline(path.join(ROOT, t)) }));
  const everyStep = [
    ...allSteps(pipeline).map((s) => ({ file: 'azure-pipelines.yml', ...s })),
    ...templates.flatMap((t) => allSteps(t.doc).map((s) => ({ file: t.file, ...s }))),
  ];

  it('has the stages Test, ClusterTest, Build, Model, DeployDev, DeployProd in that order', function () {
    const names = stagesOf(pipeline).map((s) =>
      typeof s.stage === 'string' ? s.stage : String(asNode(s.parameters).stage),
    );
    assert.deepEqual(names, ['Test', 'ClusterTest', 'Build', 'Model', 'DeployDev', 'DeployProd']);
  });

  it('every script step runs a project script that exists in package.json, or the fnolctl bundle', function () {
    const scriptSteps = everyStep.filter((s) => typeof s.step.script === 'string');
    assert.ok(scriptSteps.length >= 8, `only ${scriptSteps.length} script steps`);
    for (const { file, where, step } of scriptSteps) {
      const text = String(step.script).trim();
      if (text.startsWith(`${BUNDLED_FNOLCTL} `) && !text.includes('\n')) continue;
      const m = /^npm run ([\w:.-]+)(?:\s|$)/.exec(text);
      assert.ok(
        m && !text.includes('\n'),
        `${file}${where}: "${text}" is not a single npm run of a project script`,
      );
      assert.ok(m[1]! in scripts, `${file}${where}: npm script "${m[1]}" is not defined in package.json`);
    }
  });

  it('templates referenced by the pipeline exist', function () {
    for (const stage of stagesOf(pipeline)) {
      if (typeof stage.template === 'string') {
        assert.ok(existsSync(path.join(ROOT, stage.template)), `missing template ${stage.template}`);
        assert.ok(TEMPLATES.includes(stage.template), `template ${stage.template} is not schema-checked`);
      }
    }
  });

  it('deploys through deployment jobs on environments, prod with automatic rollback', function () {
    const deploy = templates[0]!.doc;
    const job = asNode((stagesOf(deploy)[0]!.jobs as Node[])[0]);
    assert.equal(job.deployment, 'deploy');
    assert.equal(job.environment, '${{ parameters.environment }}');
    const runOnce = asNode(asNode(job.strategy).runOnce);
    const failure = allSteps(asNode(runOnce.on).failure).map((s) => String(s.step.script ?? ''));
    assert.ok(
      failure.some((s) => s.startsWith(`${BUNDLED_FNOLCTL} rollback `)),
      'no rollback on failure',
    );
    const promote = allSteps(runOnce.deploy).map((s) => String(s.step.script ?? ''));
    assert.ok(
      promote.some((s) => s.startsWith(`${BUNDLED_FNOLCTL} promote `)),
      'no fnolctl promote',
    );
    assert.ok(
      promote.some((s) => s.startsWith(`${BUNDLED_FNOLCTL} score `)),
      'no smoke test',
    );
    const prod = stagesOf(pipeline).find((s) => (s.parameters as Node | undefined)?.stage === 'DeployProd');
    assert.equal(asNode(prod?.parameters).rollbackOnFailure, true);
    assert.equal(asNode(prod?.parameters).environment, 'fnol-prod');
  });

  it('the failure hook rolls back only the promotion of its own run (--if-promoted-by the promote id)', function () {
    const deploy = templates[0]!.doc;
    const stage = stagesOf(deploy)[0]!;
    const job = asNode((stage.jobs as Node[])[0]);
    const runOnce = asNode(asNode(job.strategy).runOnce);
    const promote = allSteps(runOnce.deploy)
      .map((s) => String(s.step.script ?? ''))
      .find((s) => s.startsWith(`${BUNDLED_FNOLCTL} promote `));
    const hook = allSteps(asNode(runOnce.on).failure)
      .map((s) => String(s.step.script ?? ''))
      .find((s) => s.startsWith(`${BUNDLED_FNOLCTL} rollback `));
    const idOf = (script: string | undefined, flag: string): string | undefined =>
      new RegExp(`${flag} (\\S+)`).exec(script ?? '')?.[1];
    const promotionId = idOf(promote, '--promotion-id');
    assert.ok(promotionId, `the promote step passes no --promotion-id: ${promote}`);
    assert.equal(idOf(hook, '--if-promoted-by'), promotionId, `the hook: ${hook}`);
    // The id differs per run and per stage attempt, so a retry cannot undo an older promotion.
    const vars = (stage.variables as Node[]).find((v) => `$(${String(v.name)})` === promotionId);
    assert.ok(vars, `${promotionId} is not a stage variable`);
    assert.match(String(vars.value), /\$\(Build\.BuildId\)/);
    assert.match(String(vars.value), /\$\(System\.StageAttempt\)/);
    assert.match(String(vars.value), /\$\{\{ parameters\.stage \}\}/);
  });

  it('prod promotes progressively (mirror 100, canary 10 and 50, explicit thresholds); dev directly', function () {
    const deployParams = (stage: string): Node =>
      asNode(stagesOf(pipeline).find((s) => (s.parameters as Node | undefined)?.stage === stage)?.parameters);
    const flags = (stage: string): string[] =>
      String(deployParams(stage).progressive ?? '')
        .split(/\s+/)
        .filter(Boolean);
    // fnolctl's own parser: the flags must be ones it accepts, with the plan the docs describe.
    const prod = progressivePlan(['promote', ...flags('DeployProd')]);
    assert.ok(prod, 'DeployProd passes no progressive flags');
    assert.deepEqual(
      prod.steps.map((s) => [s.mirrorPercent, s.trafficPercent]),
      [
        [100, 0],
        [100, 10],
        [100, 50],
      ],
    );
    assert.ok(prod.holdMs >= 60_000, `prod holds each step only ${prod.holdMs} ms`);
    // Every threshold is written out in the pipeline, so a change to a default shows in review.
    const analysis = /--analysis (\S+)/.exec(flags('DeployProd').join(' '))?.[1] ?? '';
    for (const key of Object.keys(DEFAULT_THRESHOLDS)) assert.match(analysis, new RegExp(`\\b${key}=`), key);
    assert.equal(progressivePlan(['promote', ...flags('DeployDev')]), undefined, 'dev promotes directly');
    // The job outlasts the steps: each hold plus a wait of up to --timeout per step and for the rollout.
    const minutes = Number(deployParams('DeployProd').timeoutInMinutes);
    const worst = (prod.steps.length * (prod.holdMs / 1000 + 600) + 600) / 60;
    assert.ok(minutes >= worst, `DeployProd timeoutInMinutes ${minutes} < ${worst} that the steps may take`);
    // The template passes the flags to the promote step.
    const template = readFileSync(path.join(ROOT, TEMPLATES[0]!), 'utf8');
    assert.match(template, /kubectl-fnol promote .*\$\{\{ parameters\.progressive \}\}/);
    assert.match(template, /timeoutInMinutes: \$\{\{ parameters\.timeoutInMinutes \}\}/);
  });

  it('holds no secrets: credentials come from service connections and variable groups', function () {
    for (const file of ['azure-pipelines.yml', ...TEMPLATES]) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      assert.doesNotMatch(
        text,
        /AccountKey=|SharedAccessSignature|[?&]sig=|password\s*:|BEGIN [A-Z ]*PRIVATE KEY/i,
        file,
      );
    }
    assert.equal(asNode(findTask(pipeline, 'AzureCLI@2').inputs).azureSubscription, 'fnol-azure');
    const groups = (asNode(pipeline).variables as Node[]).filter((v) => 'group' in v).map((v) => v.group);
    assert.deepEqual(groups, ['fnol-pipeline']);
  });
});

describe('azure-pipelines.yml: gates, images by digest, SBOMs, scan, the fnolctl bundle', function () {
  const pipeline = parsePipeline(PIPELINE);
  const deploy = parsePipeline(path.join(ROOT, TEMPLATES[0]!));
  const stage = (name: string): Node => {
    const s = stagesOf(pipeline).find((x) => x.stage === name || asNode(x.parameters ?? {}).stage === name);
    assert.ok(s, `no stage ${name}`);
    return s;
  };
  const jobsOf = (s: Node): Node[] => s.jobs as Node[];
  const stepsOf = (job: Node): Node[] => allSteps(job).map((s) => s.step);
  const scriptOf = (step: Node): string => String(step.script ?? '').trim();
  const deployJob = asNode(jobsOf(stagesOf(deploy)[0]!)[0]);
  const runOnce = asNode(asNode(deployJob.strategy).runOnce);
  const deploySteps = allSteps(runOnce.deploy).map((s) => s.step);
  const hookSteps = allSteps(asNode(runOnce.on).failure).map((s) => s.step);
  const dependsOn = (name: string): string[] => {
    const s = stage(name);
    const d = s.dependsOn ?? asNode(s.parameters ?? {}).dependsOn;
    return Array.isArray(d) ? d.map(String) : d === undefined ? [] : [String(d)];
  };
  /** Every stage `name` waits for, directly or through others. */
  const upstream = (name: string): Set<string> => {
    const seen = new Set<string>();
    const walk = (n: string) => {
      for (const d of dependsOn(n)) {
        if (seen.has(d)) continue;
        seen.add(d);
        walk(d);
      }
    };
    walk(name);
    return seen;
  };

  it('the cluster integration and end-to-end suites run before any deploy', function () {
    const steps = jobsOf(stage('ClusterTest')).flatMap(stepsOf);
    assert.ok(
      steps.some((s) => scriptOf(s) === 'npm run pipeline:cluster-test'),
      'no pipeline:cluster-test step',
    );
    const script = readFileSync(path.join(ROOT, 'pipeline/cluster-test.sh'), 'utf8');
    for (const suite of ['operator/test/integration', 'cli/test/integration', 'cluster/test', 'test/e2e']) {
      assert.ok(script.includes(`'${suite}/**/*.test.ts'`), `pipeline/cluster-test.sh does not run ${suite}`);
    }
    assert.match(script, /cluster\/check-clean\.sh/, 'the stage does not check that the agent is left clean');
    for (const d of ['DeployDev', 'DeployProd']) {
      assert.ok(upstream(d).has('ClusterTest'), `${d} does not wait for ClusterTest`);
      assert.ok(
        upstream(d).has('Build') && upstream(d).has('Model'),
        `${d} does not wait for Build and Model`,
      );
    }
  });

  it('images are scanned before they are pushed, with the stated policy; the reports are published', function () {
    const steps = stepsOf(jobsOf(stage('Build')).find((j) => j.job === 'images')!);
    const scan = steps.findIndex((s) => scriptOf(s).startsWith('npm run pipeline:scan-images '));
    const pushes = steps
      .map((s, i) => (s.task === 'Docker@2' && asNode(s.inputs).command === 'push' ? i : -1))
      .filter((i) => i >= 0);
    assert.ok(scan >= 0, 'no scan step');
    assert.equal(pushes.length, 2);
    assert.ok(
      pushes.every((p) => p > scan),
      'an image is pushed before it is scanned',
    );
    for (const repo of ['scorerRepository', 'operatorRepository']) {
      assert.ok(scriptOf(steps[scan]!).includes(`$(${repo}):$(imageTag)`), `the scan leaves out $(${repo})`);
    }
    const script = readFileSync(path.join(ROOT, 'pipeline/scan-images.sh'), 'utf8');
    assert.match(script, /--severity CRITICAL,HIGH --ignore-unfixed/);
    assert.match(script, /--exit-code 1/);
    const report = steps.find(
      (s) => s.task === 'PublishPipelineArtifact@1' && asNode(s.inputs).artifact === 'image-scan',
    );
    assert.equal(
      report?.condition,
      'succeededOrFailed()',
      'the scan reports are not published when the scan fails',
    );
  });

  it('images go from build to deploy by digest: recorded after the push, rendered from that record', function () {
    const steps = stepsOf(jobsOf(stage('Build')).find((j) => j.job === 'images')!);
    const lastPush = steps.map((s) => asNode(s.inputs ?? {}).command).lastIndexOf('push');
    const record = steps.findIndex((s) => scriptOf(s).startsWith('npm run pipeline:image-digests '));
    assert.ok(record > lastPush, 'the digests are not recorded after both pushes');
    assert.match(scriptOf(steps[record]!), /--out build\/images\/images\.json /);
    const published = steps.find(
      (s) => s.task === 'PublishPipelineArtifact@1' && asNode(s.inputs).artifact === 'images',
    );
    assert.equal(asNode(published?.inputs).targetPath, 'build/images');

    assert.ok(deploySteps.some((s) => s.download === 'current' && s.artifact === 'images'));
    const render = deploySteps.find((s) => scriptOf(s).startsWith('npm run pipeline:render-operator'));
    assert.equal(
      scriptOf(render!),
      'npm run pipeline:render-operator-digests -- --images $(Pipeline.Workspace)/images/images.json',
    );
    // Nothing in the deploy stage names an image by tag.
    const template = readFileSync(path.join(ROOT, TEMPLATES[0]!), 'utf8');
    assert.doesNotMatch(template, /\$\(imageTag\)/);
  });

  it('an SBOM per image (CycloneDX) is published', function () {
    const cli = jobsOf(stage('Build')).find((j) => j.job === 'cli');
    assert.ok(cli, 'no cli job in Build');
    const steps = stepsOf(cli);
    const sbom = steps.findIndex((s) => scriptOf(s).startsWith('npm run pipeline:sbom'));
    const published = steps.findIndex(
      (s) => s.task === 'PublishPipelineArtifact@1' && asNode(s.inputs).artifact === 'sbom',
    );
    assert.ok(sbom >= 0 && published > sbom, 'no SBOM step followed by the sbom artifact');
    assert.match(
      readFileSync(path.join(ROOT, 'pipeline/sbom.sh'), 'utf8'),
      /npm sbom --sbom-format cyclonedx/,
    );
  });

  it('fnolctl is bundled once in Build; the deploy stages and the failure hook run that file and install nothing', function () {
    const bundlers = stagesOf(pipeline).flatMap((s) =>
      ((s.jobs as Node[] | undefined) ?? []).flatMap((j) =>
        stepsOf(j)
          .filter((st) => scriptOf(st).startsWith('npm run cli:bundle'))
          .map(() => `${String(s.stage)}/${String(j.job)}`),
      ),
    );
    assert.deepEqual(bundlers, ['Build/cli']);
    const steps = stepsOf(jobsOf(stage('Build')).find((j) => j.job === 'cli')!);
    const artifact = steps.find(
      (s) => s.task === 'PublishPipelineArtifact@1' && asNode(s.inputs).artifact === 'kubectl-fnol',
    );
    assert.equal(asNode(artifact?.inputs).targetPath, 'build/kubectl-fnol');
    for (const [what, steps] of [
      ['deploy', deploySteps],
      ['failure hook', hookSteps],
    ] as const) {
      assert.ok(
        steps.some((s) => s.download === 'current' && s.artifact === 'kubectl-fnol'),
        `the ${what} does not download the bundle`,
      );
      for (const s of steps) {
        assert.doesNotMatch(scriptOf(s), /^npm (ci|install)\b|^npm run (setup|setup:node|fnolctl)\b/, what);
      }
    }
  });
});
