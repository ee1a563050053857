// fnolctl (also `kubectl fnol`): promote, roll back, inspect and smoke-test FnolModel serving.
//   fnolctl promote  [-n NS] NAME (--from publish.json | --model-version V --uri U --sha256 H) [--timeout S]
//                    [--promotion-id ID] [--mirror P [--canary P1,P2] [--step-seconds S] [--analysis K=V,...]]
//   fnolctl rollback [-n NS] NAME [--timeout S] [--if-promoted-by ID]
//   fnolctl status   [-n NS] NAME [-o json|yaml|table]
//   fnolctl score    --url URL [--api-key-file F] [--expect-version V]
// Each command is one entry of COMMANDS; docs/fnolctl.md is the reference
// (flags, output formats, exit codes: 0 done, 1 error, 2 bad usage, 3 promotion
// failed and the previous model was restored, 4 restore failed too, 5 a
// progressive step failed its analysis, 6 the candidate was not ready in time).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import type { FnolModel, FnolModelSpecModelInput } from '@fnol/api';
import {
  GLOBAL_OPTIONS,
  GLOBAL_USAGE,
  GLOBAL_VALUE_FLAGS,
  UsageError,
  kubeConfigFrom,
  namespaceFrom,
  parseOutput,
  positiveSeconds,
  str,
  type Command,
  type CommandContext,
  type Values,
} from './command';
import { fnolModelApi } from './fnolmodels';
import { LOGS_OPTIONS, LOGS_USAGE, logsCommand } from './logs-export';
import { PromotionError, promote, rollback, rollbackIfPromotedBy } from './promote';
import { describeCanary, parseAnalysis, planSteps } from './canary';
import { abortableSleep, promoteProgressively } from './progressive';
import {
  describeStatus,
  exampleRequest,
  modelFromPublishResult,
  validateModelSpec,
  validatePromotionId,
} from './rollout';
import { toolVersion } from './version';

export const EXIT_CODES = `exit codes: 0 done, 1 error, 2 bad usage, 3 promotion failed and the previous model
  was restored, 4 the restore failed too, 5 a progressive step failed its analysis,
  6 the candidate was not ready in time (5 and 6: spec.canary removed, spec.model untouched)`;

const TIMEOUT = { timeout: { type: 'string', default: '600' } } as const;
const NAME = { name: { type: 'string' } } as const;

function optionalId(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    return validatePromotionId(value, flag);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function requestedModel(values: Values): FnolModelSpecModelInput {
  const from = str(values, 'from');
  const version = str(values, 'model-version');
  const uri = str(values, 'uri');
  const sha256 = str(values, 'sha256');
  let model: FnolModelSpecModelInput;
  if (from) {
    if (version || uri || sha256) {
      throw new UsageError('give either --from or --model-version/--uri/--sha256, not both');
    }
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(from, 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot read the publish result ${from}: ${(err as Error).message}`);
    }
    model = modelFromPublishResult(json, from);
  } else {
    if (!version || !uri || !sha256) {
      throw new UsageError(
        'promote needs --from PUBLISH_JSON, or all of --model-version, --uri and --sha256',
      );
    }
    model = validateModelSpec({ version, uri, sha256 }, 'the command line');
  }
  const secret = str(values, 'credentials-secret');
  if (secret) model.credentialsSecretRef = { name: secret };
  return model;
}

/** The progressive promote's options, or undefined when no progressive flag is given (direct promote). */
function progressiveOptions(values: Values) {
  const flags = ['mirror', 'canary', 'step-seconds', 'analysis'] as const;
  if (flags.every((f) => values[f] === undefined)) return undefined;
  try {
    return {
      steps: planSteps(str(values, 'mirror'), str(values, 'canary')),
      holdMs: positiveSeconds(str(values, 'step-seconds') ?? '120', '--step-seconds') * 1000,
      thresholds: parseAnalysis(str(values, 'analysis')),
    };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

/** What status and (with -o json|yaml) promote and rollback print: the FnolModel's rollout view. */
function statusDocument(fm: FnolModel): Record<string, unknown> {
  return {
    metadata: fm.metadata,
    spec: { model: fm.spec.model, canary: fm.spec.canary },
    status: fm.status ?? {},
  };
}

/** `-o table`: one row per FnolModel, as kubectl get prints. */
function statusTable(fm: FnolModel): string[] {
  const s = fm.status ?? {};
  const rows = [
    ['NAMESPACE', 'NAME', 'SPEC', 'ACTIVE', 'PHASE', 'READY', 'CANARY', 'URL'],
    [
      fm.metadata.namespace ?? '',
      fm.metadata.name ?? '',
      fm.spec.model.version,
      s.activeVersion ?? '-',
      s.phase ?? 'Pending',
      String(s.readyReplicas ?? 0),
      fm.spec.canary ? fm.spec.canary.model.version : '-',
      s.url ?? '-',
    ],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('   ')
      .trimEnd(),
  );
}

async function printFinalStatus(ctx: CommandContext, namespace: string, name: string): Promise<void> {
  if (ctx.output !== 'json' && ctx.output !== 'yaml') return;
  const fm = await fnolModelApi(ctx.kubeConfig()).get(namespace, name);
  ctx.printDocument(statusDocument(fm));
}

const promoteCommand: Command = {
  summary: 'apply a model version to a FnolModel and wait until it serves (directly or progressively)',
  usage: `usage: fnolctl promote [-n NAMESPACE] NAME (--from PUBLISH_JSON | --model-version V --uri URI --sha256 HEX)
         [--credentials-secret NAME] [--timeout SECONDS] [--promotion-id ID]
         [--mirror PERCENT [--canary P1,P2,...] [--step-seconds SECONDS] [--analysis K=V,...]]
Applies spec.model and waits for Ready; on Degraded or timeout restores the previous model.
  --from FILE              the publish result (publish.json) of npm run model:publish
  --model-version V        with --uri and --sha256: the model version to promote, given by hand
  --credentials-secret S   the Secret with the model store's SAS token, if the blob needs one
  --timeout SECONDS        how long to wait for Ready (600)
  --promotion-id ID        records the promotion on the FnolModel under ID (a pipeline run)
progressive: --mirror PERCENT [--canary P1,P2,...] [--step-seconds SECONDS (120)]
  [--analysis 'maxMedianDiff=0.001,maxP95Diff=0.01,maxExceedingShare=0.05,maxErrorRate=0.01,
  maxLatencyRatio=2,minRequests=100'] (the defaults): the candidate goes into spec.canary,
  mirrored first, then answering each share of live requests; each step is held and checked;
  then it moves into spec.model. On a breach or timeout spec.canary is removed: exit 5
  (analysis failed) or 6 (candidate not ready in time).
-o json|yaml prints the FnolModel's status at the end.`,
  options: {
    ...NAME,
    ...TIMEOUT,
    from: { type: 'string' },
    'model-version': { type: 'string' },
    uri: { type: 'string' },
    sha256: { type: 'string' },
    'credentials-secret': { type: 'string' },
    'promotion-id': { type: 'string' },
    mirror: { type: 'string' },
    canary: { type: 'string' },
    'step-seconds': { type: 'string' },
    analysis: { type: 'string' },
  },
  async run(ctx) {
    const model = requestedModel(ctx.values);
    const timeoutMs = positiveSeconds(ctx.values.timeout, '--timeout') * 1000;
    const promotionId = optionalId(str(ctx.values, 'promotion-id'), '--promotion-id');
    const progressive = progressiveOptions(ctx.values);
    const { namespace, name } = ctx.target();
    const api = fnolModelApi(ctx.kubeConfig());
    if (progressive) {
      // A signal during a step removes spec.canary before exiting; a second one is
      // not needed (and ignored), the process ends after at most a minute anyway.
      const controller = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => {
        if (controller.signal.aborted) return;
        console.error(`${signal}: stopping the promotion`);
        controller.abort(new Error(`interrupted by ${signal}`));
        setTimeout(() => process.exit(130), 60_000).unref();
      };
      process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
      try {
        await promoteProgressively(api, namespace, name, model, {
          timeoutMs,
          log: ctx.log,
          promotionId,
          sleep: abortableSleep(controller.signal),
          ...progressive,
        });
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    } else {
      await promote(api, namespace, name, model, { timeoutMs, log: ctx.log, promotionId });
    }
    await printFinalStatus(ctx, namespace, name);
    return 0;
  },
};

const rollbackCommand: Command = {
  summary: 'promote the model the last promotion replaced',
  usage: `usage: fnolctl rollback [-n NAMESPACE] NAME [--timeout SECONDS] [--if-promoted-by ID]
Promotes the model the last promotion replaced and waits for Ready.
  --timeout SECONDS        how long to wait for Ready (600)
  --if-promoted-by ID      undo only the promotion recorded under ID, once, and only if
                           promote did not already restore it (the pipeline's failure hook)
-o json|yaml prints the FnolModel's status at the end.`,
  options: { ...NAME, ...TIMEOUT, 'if-promoted-by': { type: 'string' } },
  async run(ctx) {
    const timeoutMs = positiveSeconds(ctx.values.timeout, '--timeout') * 1000;
    const onlyFor = optionalId(str(ctx.values, 'if-promoted-by'), '--if-promoted-by');
    const { namespace, name } = ctx.target();
    const api = fnolModelApi(ctx.kubeConfig());
    if (onlyFor) await rollbackIfPromotedBy(api, namespace, name, onlyFor, { timeoutMs, log: ctx.log });
    else await rollback(api, namespace, name, { timeoutMs, log: ctx.log });
    await printFinalStatus(ctx, namespace, name);
    return 0;
  },
};

const statusCommand: Command = {
  summary: "a FnolModel's versions, phase, conditions and canary comparison",
  usage: `usage: fnolctl status [-n NAMESPACE] NAME [-o json|yaml|table]
Prints the FnolModel's spec and active versions, phase, ready replicas, URL, rollback
target, last promotion, conditions and (during a progressive promotion) the comparison.
  -o json|yaml             metadata, spec.model, spec.canary and status as one document
  -o table                 one row: namespace, name, versions, phase, ready replicas, canary, URL
  --json                   the same as -o json`,
  options: { ...NAME, json: { type: 'boolean' } },
  async run(ctx) {
    if (ctx.values.json && ctx.output && ctx.output !== 'json') {
      throw new UsageError(`--json and -o ${ctx.output} contradict each other; give one`);
    }
    const { namespace, name } = ctx.target();
    const fm = await fnolModelApi(ctx.kubeConfig()).get(namespace, name);
    if (ctx.values.json) console.log(JSON.stringify(statusDocument(fm)));
    else if (ctx.output === 'table') for (const line of statusTable(fm)) console.log(line);
    else if (!ctx.printDocument(statusDocument(fm))) {
      for (const line of [...describeStatus(fm), ...describeCanary(fm)]) ctx.log(line);
    }
    return 0;
  },
};

const scoreCommand: Command = {
  summary: 'send the example record to a scorer or Ingress URL (smoke test)',
  usage: `usage: fnolctl score --url URL [--api-key-file FILE] [--expect-version V] [--retries N]
Sends the example record to URL/score and checks the answer; with --expect-version also
checks URL/model. The API key comes from --api-key-file or FNOL_API_KEY.
  --retries N              retries of a 5xx answer or a failed connection, 3 s apart (5)
-o json|yaml prints the URL, the scores and the model version.`,
  options: {
    url: { type: 'string' },
    'api-key-file': { type: 'string' },
    'expect-version': { type: 'string' },
    retries: { type: 'string', default: '5' },
  },
  async run(ctx) {
    const result = await score(ctx.values, ctx.log);
    ctx.printDocument(result);
    return 0;
  },
};

/**
 * The commands, by name. A new command is one entry here and one module
 * exporting its `Command`.
 */
const logsCommandEntry: Command = {
  summary: 'logs export: a window of payload logs as a CSV for retraining',
  usage: LOGS_USAGE,
  options: LOGS_OPTIONS,
  run: (ctx) => logsCommand(ctx.values as Parameters<typeof logsCommand>[0], ctx.args, ctx.log),
};

export const COMMANDS: Record<string, Command> = {
  promote: promoteCommand,
  rollback: rollbackCommand,
  status: statusCommand,
  score: scoreCommand,
  logs: logsCommandEntry,
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: fnolctl COMMAND [options]   (as a kubectl plugin: kubectl fnol COMMAND [options])',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    GLOBAL_USAGE,
    EXIT_CODES,
    'Run fnolctl COMMAND --help for the options of a command.',
  ].join('\n');
}

function commandUsage(command: Command): string {
  return `${command.usage}\n${GLOBAL_USAGE}\n${EXIT_CODES}`;
}

/** The command word: the first argument that is neither an option nor a global option's value. */
function commandWord(argv: string[]): { index: number; word: string } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1] === undefined ? undefined : { index: i + 1, word: argv[i + 1]! };
    if (GLOBAL_VALUE_FLAGS.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return { index: i, word: a };
  }
  return undefined;
}

function parseFor(command: Command | undefined, argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { ...GLOBAL_OPTIONS, ...(command?.options ?? {}) },
  });
}

/**
 * The progressive plan the promote flags in `argv` describe (undefined for a
 * direct promote); throws with fnolctl's own message on bad flags. The
 * pipeline's tests check the deploy stage's flags with it.
 */
export function progressivePlan(argv: string[]): ReturnType<typeof progressiveOptions> {
  const at = commandWord(argv);
  const rest = at ? [...argv.slice(0, at.index), ...argv.slice(at.index + 1)] : argv;
  return progressiveOptions(parseFor(promoteCommand, rest).values as Values);
}

async function score(
  values: Values,
  log: (l: string) => void,
): Promise<{ url: string; ultimateCost: number[]; modelVersion?: string }> {
  const url = str(values, 'url');
  if (!url) throw new UsageError('score needs --url (the scorer or Ingress base URL)');
  const base = url.replace(/\/+$/, '');
  let key = process.env.FNOL_API_KEY?.trim();
  const keyFile = str(values, 'api-key-file');
  if (keyFile) {
    try {
      key = readFileSync(keyFile, 'utf8').split('\n')[0]?.trim();
    } catch (err) {
      throw new UsageError(`cannot read --api-key-file ${keyFile}: ${(err as Error).message}`);
    }
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['x-api-key'] = key;
  const retries = Math.max(0, Math.floor(Number(values.retries) || 0));

  const call = async (path: string, init: RequestInit): Promise<unknown> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${base}${path}`, { ...init, headers, signal: AbortSignal.timeout(15_000) });
        const text = await res.text();
        if (res.ok) return JSON.parse(text) as unknown;
        if (res.status < 500 || attempt >= retries) {
          throw new Error(`${init.method} ${base}${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
        }
        log(`  ${path}: HTTP ${res.status}, retrying (${attempt + 1}/${retries})`);
      } catch (err) {
        const message = (err as Error).message;
        if (message.startsWith(`${init.method} `)) throw err;
        // fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, a timeout) is its cause.
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const why = cause ? `${message} (${cause.code ?? cause.message})` : message;
        if (attempt >= retries) {
          throw new Error(
            `${init.method} ${base}${path}: ${why}; check --url and that the scorer or Ingress is reachable`,
          );
        }
        log(`  ${path}: ${why}, retrying (${attempt + 1}/${retries})`);
      }
      await new Promise((r) => setTimeout(r, 3000));
    }
  };

  const body = exampleRequest();
  log(`POST ${base}/score with the example record (${body.data.length} rows)`);
  const out = (await call('/score', { method: 'POST', body: JSON.stringify(body) })) as { result?: unknown };
  const result = out.result;
  if (
    !Array.isArray(result) ||
    result.length !== body.data.length ||
    !result.every((v) => Number.isFinite(v) && v >= 0)
  ) {
    throw new Error(`unexpected answer from ${base}/score: ${JSON.stringify(out).slice(0, 300)}`);
  }
  const ultimateCost = result as number[];
  log(`  ultimate_cost: ${ultimateCost.map((v) => v.toFixed(2)).join(', ')}`);
  const expected = str(values, 'expect-version');
  if (!expected) return { url: base, ultimateCost };
  const model = (await call('/model', { method: 'GET' })) as { version?: string };
  if (model.version !== expected) {
    throw new Error(`${base} serves model version ${model.version}, expected ${expected}`);
  }
  log(`  serving model version ${model.version}`);
  return { url: base, ultimateCost, modelVersion: model.version };
}

/**
 * Runs one fnolctl command line; resolves to its exit code. `log` receives the
 * progress lines (with -o json|yaml they go to stderr instead).
 */
export async function main(argv: string[], log: (l: string) => void = console.log): Promise<number> {
  const at = commandWord(argv);
  const word = at?.word === 'help' ? argv[at.index + 1] : at?.word;
  const command = word === undefined ? undefined : COMMANDS[word];
  const fail = (message: string, help: string): number => {
    console.error(`error: ${message}\n${help}`);
    return 2;
  };
  if (word !== undefined && !command) return fail(`unknown command "${word}"`, usage());
  const help = command ? commandUsage(command) : usage();
  if (at?.word === 'help') {
    console.log(help);
    return 0;
  }
  const rest = at ? [...argv.slice(0, at.index), ...argv.slice(at.index + 1)] : argv;
  let values: Values;
  let positionals: string[];
  let output;
  try {
    ({ values, positionals } = parseFor(command, rest));
    output = parseOutput(str(values, 'output'));
  } catch (err) {
    return fail((err as Error).message, help);
  }
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (values.version) {
    if (command) {
      return fail(
        "--version prints fnolctl's own version and takes no command; the model version to promote is --model-version",
        help,
      );
    }
    console.log(toolVersion());
    return 0;
  }
  if (!command) return fail('no command given', help);

  let kc: k8s.KubeConfig | undefined;
  const kubeConfig = () => (kc ??= kubeConfigFrom(values));
  const ctx: CommandContext = {
    values,
    args: positionals,
    output,
    log: output === 'json' || output === 'yaml' ? (l) => console.error(l) : log,
    printDocument(doc) {
      if (output === 'json') console.log(JSON.stringify(doc, null, 2));
      else if (output === 'yaml') process.stdout.write(k8s.dumpYaml(doc));
      else return false;
      return true;
    },
    kubeConfig,
    target() {
      const name = str(values, 'name') ?? positionals[0];
      if (!name) throw new UsageError('the FnolModel name is required (positional or --name)');
      if (positionals.length > (str(values, 'name') ? 0 : 1)) {
        throw new UsageError(
          `unexpected arguments: ${positionals.slice(str(values, 'name') ? 0 : 1).join(' ')}`,
        );
      }
      return { namespace: namespaceFrom(values, kubeConfig), name };
    },
  };
  try {
    return await command.run(ctx);
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, help);
    console.error(`error: ${(err as Error).message}`);
    return err instanceof PromotionError ? err.exitCode : 1;
  }
}

if (require.main === module) {
  // main reports its own errors; anything else still ends the process with a message.
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
