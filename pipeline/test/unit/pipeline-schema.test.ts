// The pipeline's structural check: azure-pipelines.yml and its templates against
// Microsoft's Azure Pipelines schema, plus the project's own rules for it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { ROOT, allSteps, compileSchema, describeErrors, parsePipeline } from '../../src/schema';
import { progressivePlan } from '../../../cli/src/fnolctl';
import { DEFAULT_THRESHOLDS } from '../../../cli/src/canary';

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

  it('has the stages Test, Build, Model, DeployDev, DeployProd in that order', function () {
    const names = stagesOf(pipeline).map((s) =>
      typeof s.stage === 'string' ? s.stage : String(asNode(s.parameters).stage),
    );
    assert.deepEqual(names, ['Test', 'Build', 'Model', 'DeployDev', 'DeployProd']);
  });

  it('every script step runs a project script that exists in package.json', function () {
    const scriptSteps = everyStep.filter((s) => typeof s.step.script === 'string');
    assert.ok(scriptSteps.length >= 8, `only ${scriptSteps.length} script steps`);
    for (const { file, where, step } of scriptSteps) {
      const text = String(step.script).trim();
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
      failure.some((s) => s.startsWith('npm run fnolctl -- rollback')),
      'no rollback on failure',
    );
    const promote = allSteps(runOnce.deploy).map((s) => String(s.step.script ?? ''));
    assert.ok(
      promote.some((s) => s.startsWith('npm run fnolctl -- promote')),
      'no fnolctl promote',
    );
    assert.ok(
      promote.some((s) => s.startsWith('npm run fnolctl -- score')),
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
      .find((s) => s.startsWith('npm run fnolctl -- promote'));
    const hook = allSteps(asNode(runOnce.on).failure)
      .map((s) => String(s.step.script ?? ''))
      .find((s) => s.startsWith('npm run fnolctl -- rollback'));
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
    assert.match(template, /npm run fnolctl -- promote .*\$\{\{ parameters\.progressive \}\}/);
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
