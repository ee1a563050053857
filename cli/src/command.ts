// The shape of an fnolctl command, the options every command takes (kubeconfig,
// context, namespace, output format) and the helpers commands share. Each
// command is one entry of the command table in fnolctl.ts.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { loadKubeConfig } from './fnolmodels';

/** Wrong or missing flags: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export const OUTPUT_FORMATS = ['json', 'yaml', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Options every command accepts, before or after the command name. */
export const GLOBAL_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies Options;

/** The global options that take a value: the word after them is not the command. */
export const GLOBAL_VALUE_FLAGS = new Set([
  '--kubeconfig',
  '--context',
  '--namespace',
  '-n',
  '--output',
  '-o',
]);

export const GLOBAL_USAGE = `global options (before or after the command):
  --kubeconfig FILE        the kubeconfig to use (default: KUBECONFIG, then ~/.kube/config)
  --context NAME           the kubeconfig context to use (default: its current-context)
  -n, --namespace NS       the FnolModel's namespace (default: the context's namespace, then "default")
  -o, --output FORMAT      json, yaml or table; json and yaml print one document on stdout
                           and the progress lines on stderr
  -h, --help               this help; COMMAND --help for the command's own
  --version                fnolctl's own version`;

export interface CommandContext {
  values: Values;
  /** The positional arguments after the command name. */
  args: string[];
  /** Progress lines: stdout, or stderr when the output format is json or yaml. */
  log: (line: string) => void;
  /** The output format asked for with -o, if any. */
  output: OutputFormat | undefined;
  /** Prints `doc` on stdout as JSON or YAML (with -o json|yaml); false if the format is table or none. */
  printDocument: (doc: unknown) => boolean;
  /** The kubeconfig from --kubeconfig/--context (or KUBECONFIG), loaded on first use. */
  kubeConfig: () => k8s.KubeConfig;
  /** The FnolModel the command acts on: -n (or the context's namespace) and NAME (or --name). */
  target: () => { namespace: string; name: string };
}

export interface Command {
  /** One line for the command list. */
  summary: string;
  /** The command's own help: synopsis and details. */
  usage: string;
  /** Its options beyond the global ones. */
  options: Options;
  /** Runs the command; resolves to the exit code. */
  run: (ctx: CommandContext) => Promise<number>;
}

export function positiveSeconds(value: string | boolean | undefined, flag: string): number {
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive number of seconds, got "${String(value)}"`);
  }
  return n;
}

export function str(values: Values, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function parseOutput(value: string | undefined): OutputFormat | undefined {
  if (value === undefined) return undefined;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(value)) {
    throw new UsageError(`-o/--output must be one of ${OUTPUT_FORMATS.join(', ')}, got "${value}"`);
  }
  return value as OutputFormat;
}

/** The kubeconfig of --kubeconfig (else KUBECONFIG or ~/.kube/config) with --context selected. */
export function kubeConfigFrom(values: Values): k8s.KubeConfig {
  const file = str(values, 'kubeconfig');
  const context = str(values, 'context');
  let kc: k8s.KubeConfig;
  if (file) {
    kc = new k8s.KubeConfig();
    try {
      kc.loadFromFile(file);
    } catch (err) {
      throw new Error(
        `cannot load the kubeconfig ${file} (${(err as Error).message}); check the --kubeconfig path`,
      );
    }
  } else {
    // Without any kubeconfig, client-node falls back to http://localhost:8080,
    // which fails later with a connection error that does not say why.
    const home = process.env.HOME ?? homedir();
    if (
      !process.env.KUBECONFIG &&
      !process.env.KUBERNETES_SERVICE_HOST &&
      !existsSync(path.join(home, '.kube', 'config'))
    ) {
      throw new Error(
        'no kubeconfig: pass --kubeconfig FILE, set KUBECONFIG, or write ~/.kube/config ' +
          '(on AKS: az aks get-credentials --resource-group RG --name CLUSTER)',
      );
    }
    kc = loadKubeConfig();
  }
  if (context) {
    if (!kc.getContextObject(context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new UsageError(
        `--context ${context} is not in the kubeconfig; its contexts: ${known.join(', ') || '(none)'}`,
      );
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(
      'the kubeconfig names no cluster for its current context; pass --context or fix the kubeconfig',
    );
  }
  return kc;
}

/** -n, else the namespace of the kubeconfig's current context, else "default" (as kubectl does). */
export function namespaceFrom(values: Values, kc: () => k8s.KubeConfig): string {
  const ns = str(values, 'namespace');
  if (ns !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) {
      throw new UsageError(
        `-n/--namespace "${ns}" is not a namespace name (lower-case letters, digits and -)`,
      );
    }
    return ns;
  }
  const config = kc();
  return config.getContextObject(config.getCurrentContext())?.namespace || 'default';
}
