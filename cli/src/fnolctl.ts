// fnolctl: promote, roll back, inspect and smoke-test FnolModel serving.
//   npm run fnolctl -- promote  -n NS NAME (--from publish.json | --version V --uri U --sha256 H) [--timeout S]
//                               [--promotion-id ID] [--mirror P [--canary P1,P2] [--step-seconds S]
//                               [--analysis K=V,...]]
//   npm run fnolctl -- rollback -n NS NAME [--timeout S] [--if-promoted-by ID]
//   npm run fnolctl -- status   -n NS NAME [--json]
//   npm run fnolctl -- score    --url URL [--api-key-file F] [--expect-version V]
// The cluster comes from KUBECONFIG. Exit codes: 0 done, 1 error, 2 bad usage,
// 3 promotion failed and the previous model was restored, 4 restore failed too,
// 5 a progressive step failed its analysis, 6 the candidate was not ready in time
// (5 and 6: spec.canary removed, spec.model untouched).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fnolModelApi, loadKubeConfig } from './fnolmodels';
import { logsMain } from './logs-export';
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
import type { FnolModelSpecModelInput } from '@fnol/api';

const USAGE = `usage: npm run fnolctl -- COMMAND [options]
  promote  -n NAMESPACE NAME --from PUBLISH_JSON | --version V --uri URI --sha256 HEX
           [--credentials-secret NAME] [--timeout SECONDS] [--promotion-id ID]
           apply spec.model, wait for Ready; on Degraded or timeout restore the previous model;
           --promotion-id records the promotion on the FnolModel under that id (a pipeline run)
           progressive: --mirror PERCENT [--canary P1,P2,...] [--step-seconds SECONDS (120)]
           [--analysis 'maxMedianDiff=0.001,maxP95Diff=0.01,maxExceedingShare=0.05,maxErrorRate=0.01,
           maxLatencyRatio=2,minRequests=100'] (these are the defaults): the candidate goes into
           spec.canary, mirrored first, then answering each share of live requests; each step is
           held and checked; then it moves into spec.model. On a breach or timeout spec.canary is
           removed: exit 5 (analysis failed) or 6 (candidate not ready in time)
  rollback -n NAMESPACE NAME [--timeout SECONDS] [--if-promoted-by ID]
           promote the model the last promotion replaced; with --if-promoted-by, undo only
           the promotion recorded under ID, once, if promote did not already restore it
  status   -n NAMESPACE NAME [--json]
  score    --url URL [--api-key-file FILE] [--expect-version V] [--retries N]
           send the example record to URL/score (API key from --api-key-file or FNOL_API_KEY)
  logs export --from URL|FILE|DIR --out OUT.csv [--since ISO] [--until ISO]
           a window of payload logs as a CSV for retraining (logs export --help)
The cluster is the current context of KUBECONFIG.`;

class UsageError extends Error {}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      name: { type: 'string' },
      from: { type: 'string' },
      version: { type: 'string' },
      uri: { type: 'string' },
      sha256: { type: 'string' },
      'credentials-secret': { type: 'string' },
      'promotion-id': { type: 'string' },
      'if-promoted-by': { type: 'string' },
      mirror: { type: 'string' },
      canary: { type: 'string' },
      'step-seconds': { type: 'string' },
      analysis: { type: 'string' },
      timeout: { type: 'string', default: '600' },
      json: { type: 'boolean', default: false },
      url: { type: 'string' },
      'api-key-file': { type: 'string' },
      'expect-version': { type: 'string' },
      retries: { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

type Values = ReturnType<typeof parse>['values'];

function target(values: Values, positionals: string[]): { namespace: string; name: string } {
  const name = values.name ?? positionals[0];
  if (!values.namespace) throw new UsageError('-n/--namespace is required');
  if (!name) throw new UsageError('the FnolModel name is required (positional or --name)');
  return { namespace: values.namespace, name };
}

function seconds(value: string | undefined, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive number of seconds, got "${value}"`);
  return n;
}

function optionalId(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    return validatePromotionId(value, flag);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function requestedModel(values: Values): FnolModelSpecModelInput {
  let model: FnolModelSpecModelInput;
  if (values.from) {
    if (values.version || values.uri || values.sha256) {
      throw new UsageError('give either --from or --version/--uri/--sha256, not both');
    }
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(values.from, 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot read the publish result ${values.from}: ${(err as Error).message}`);
    }
    model = modelFromPublishResult(json, values.from);
  } else {
    if (!values.version || !values.uri || !values.sha256) {
      throw new UsageError('promote needs --from PUBLISH_JSON, or all of --version, --uri and --sha256');
    }
    model = validateModelSpec(
      { version: values.version, uri: values.uri, sha256: values.sha256 },
      'the command line',
    );
  }
  if (values['credentials-secret']) model.credentialsSecretRef = { name: values['credentials-secret'] };
  return model;
}

/** The progressive promote's options, or undefined when no progressive flag is given (direct promote). */
function progressiveOptions(values: Values) {
  const flags = ['mirror', 'canary', 'step-seconds', 'analysis'] as const;
  if (flags.every((f) => values[f] === undefined)) return undefined;
  try {
    return {
      steps: planSteps(values.mirror, values.canary),
      holdMs: seconds(values['step-seconds'] ?? '120', '--step-seconds') * 1000,
      thresholds: parseAnalysis(values.analysis),
    };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

/**
 * The progressive plan the promote flags in `argv` describe (undefined for a
 * direct promote); throws with fnolctl's own message on bad flags. The
 * pipeline's tests check the deploy stage's flags with it.
 */
export function progressivePlan(argv: string[]): ReturnType<typeof progressiveOptions> {
  return progressiveOptions(parse(argv).values);
}

async function score(values: Values, log: (l: string) => void): Promise<void> {
  if (!values.url) throw new UsageError('score needs --url (the scorer or Ingress base URL)');
  const base = values.url.replace(/\/+$/, '');
  let key = process.env.FNOL_API_KEY?.trim();
  if (values['api-key-file']) key = readFileSync(values['api-key-file'], 'utf8').split('\n')[0]?.trim();
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
        if ((err as Error).message.startsWith(`${init.method} `) || attempt >= retries) throw err;
        log(`  ${path}: ${(err as Error).message}, retrying (${attempt + 1}/${retries})`);
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
  log(`  ultimate_cost: ${result.map((v) => (v as number).toFixed(2)).join(', ')}`);
  if (values['expect-version']) {
    const model = (await call('/model', { method: 'GET' })) as { version?: string };
    if (model.version !== values['expect-version']) {
      throw new Error(`${base} serves model version ${model.version}, expected ${values['expect-version']}`);
    }
    log(`  serving model version ${model.version}`);
  }
}

export async function main(argv: string[], log: (l: string) => void = console.log): Promise<number> {
  // Payload logs have their own options: cli/src/logs-export.ts.
  if (argv[0] === 'logs') return logsMain(argv.slice(1));
  let parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    (values.help ? console.log : console.error)(USAGE);
    return values.help ? 0 : 2;
  }
  try {
    switch (command) {
      case 'promote': {
        const { namespace, name } = target(values, rest);
        const model = requestedModel(values);
        const timeoutMs = seconds(values.timeout, '--timeout') * 1000;
        const promotionId = optionalId(values['promotion-id'], '--promotion-id');
        const progressive = progressiveOptions(values);
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
            await promoteProgressively(fnolModelApi(loadKubeConfig()), namespace, name, model, {
              timeoutMs,
              log,
              promotionId,
              sleep: abortableSleep(controller.signal),
              ...progressive,
            });
          } finally {
            process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
          }
          return 0;
        }
        await promote(fnolModelApi(loadKubeConfig()), namespace, name, model, {
          timeoutMs,
          log,
          promotionId,
        });
        return 0;
      }
      case 'rollback': {
        const { namespace, name } = target(values, rest);
        const timeoutMs = seconds(values.timeout, '--timeout') * 1000;
        const onlyFor = optionalId(values['if-promoted-by'], '--if-promoted-by');
        const api = fnolModelApi(loadKubeConfig());
        if (onlyFor) await rollbackIfPromotedBy(api, namespace, name, onlyFor, { timeoutMs, log });
        else await rollback(api, namespace, name, { timeoutMs, log });
        return 0;
      }
      case 'status': {
        const { namespace, name } = target(values, rest);
        const fm = await fnolModelApi(loadKubeConfig()).get(namespace, name);
        if (values.json) {
          console.log(
            JSON.stringify({
              metadata: fm.metadata,
              spec: { model: fm.spec.model, canary: fm.spec.canary },
              status: fm.status ?? {},
            }),
          );
        } else {
          for (const line of [...describeStatus(fm), ...describeCanary(fm)]) log(line);
        }
        return 0;
      }
      case 'score':
        await score(values, log);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n${USAGE}`);
      return 2;
    }
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
