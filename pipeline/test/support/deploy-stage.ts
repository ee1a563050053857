// The deploy stage's fnolctl command lines as Azure Pipelines would run them
// (the bundle from the Build stage, `node .../kubectl-fnol/kubectl-fnol ARGS`):
// read from pipeline/templates/deploy-stage.yml, with the template parameters
// (as azure-pipelines.yml passes them, or as a test sets them) and the
// pipeline's macros expanded. Tests run these exact commands against the cluster.
import path from 'node:path';
import { allSteps, parsePipeline, ROOT } from '../../src/schema';

const DEPLOY_STAGE = path.join(ROOT, 'pipeline/templates/deploy-stage.yml');
/** How the deploy stage runs fnolctl: the bundle downloaded from the Build stage's artifact. */
export const BUNDLED_FNOLCTL = 'node $(Pipeline.Workspace)/kubectl-fnol/kubectl-fnol';
const isFnolctl = (script: unknown, command: string): boolean =>
  String(script ?? '').startsWith(`${BUNDLED_FNOLCTL} ${command} `);

/** The parameters azure-pipelines.yml passes to the deploy stage template for `stage`, as text. */
export function stageParameters(stage: string): Record<string, string> {
  const doc = parsePipeline(path.join(ROOT, 'azure-pipelines.yml')) as { stages: Record<string, unknown>[] };
  const params = doc.stages
    .map((s) => s.parameters as Record<string, unknown> | undefined)
    .find((p) => p?.stage === stage);
  if (!params) throw new Error(`azure-pipelines.yml has no deploy stage ${stage}`);
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]));
}

/**
 * The promote step's and the `on: failure` hook's fnolctl arguments. Throws on
 * a macro or parameter the caller did not give, so a new variable cannot slip
 * through. `replace` swaps the value after a flag (e.g. shorter waits than the
 * pipeline's).
 */
export function deployStageCommands(
  predefined: Record<string, string>,
  parameters: Record<string, string>,
  replace: Record<string, string> = {},
): { promote: string[]; failureHook: string[] } {
  const doc = parsePipeline(DEPLOY_STAGE) as { stages: Record<string, unknown>[] };
  const stage = doc.stages[0]!;
  const stageVars: Record<string, string> = {};
  for (const v of (stage.variables ?? []) as { name?: string; value?: string }[]) {
    if (v.name) stageVars[v.name] = String(v.value);
  }
  const expand = (text: string, depth = 0): string => {
    if (depth > 5) throw new Error(`macro recursion in ${text}`);
    return text
      .replace(/\$\{\{\s*parameters\.(\w+)\s*\}\}/g, (_, p: string) => {
        if (!(p in parameters)) throw new Error(`template parameter ${p} is not set by the test`);
        return parameters[p]!;
      })
      .replace(/\$\(([\w.]+)\)/g, (_, v: string) => {
        if (v in predefined) return predefined[v]!;
        if (v in stageVars) return expand(stageVars[v]!, depth + 1);
        throw new Error(`pipeline variable $(${v}) is not known to the test`);
      });
  };
  const fnolctlArgs = (step: Record<string, unknown>): string[] => {
    const text = String(step.script).trim();
    if (!text.startsWith(`${BUNDLED_FNOLCTL} `)) throw new Error(`not an fnolctl step: ${text}`);
    return expand(text.slice(BUNDLED_FNOLCTL.length))
      .trim()
      .split(/\s+/)
      .map((a, i, all) => replace[all[i - 1] ?? ''] ?? a);
  };
  const job = (stage.jobs as Record<string, unknown>[])[0]!;
  const runOnce = (job.strategy as { runOnce: { deploy: unknown; on: { failure: unknown } } }).runOnce;
  const promote = allSteps(runOnce.deploy)
    .map((s) => s.step)
    .find((s) => isFnolctl(s.script, 'promote'));
  const hook = allSteps(runOnce.on.failure)
    .map((s) => s.step)
    .find((s) => isFnolctl(s.script, 'rollback'));
  if (!promote || !hook) throw new Error(`${DEPLOY_STAGE} has no fnolctl promote step or rollback hook`);
  const condition = expand(String(hook.condition ?? 'true'));
  if (condition !== "eq('true', 'true')" && condition !== 'true') {
    throw new Error(`the rollback hook would not run with these parameters (condition ${condition})`);
  }
  return { promote: fnolctlArgs(promote), failureHook: fnolctlArgs(hook) };
}
