// The scorer as it ships, for the benchmarks: the scorer workspace's own build
// (`tsc -p scorer/tsconfig.build.json`, the command Dockerfile.scorer runs) into
// ROOT/dist, laid out as in the image, run by plain `node` (not through tsx,
// whose transform adds a call per named closure created). As in the image,
// `@fnol/model-fetch` resolves to the compiled lib/model-fetch
// (dist/node_modules/@fnol/model-fetch, a link to dist/lib/model-fetch with the
// package's own package.json) and the versions only the scorer uses
// (scorer/node_modules) sit in dist/scorer/node_modules.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import ts from 'typescript';

/** The entry point of the scorer built under `root` (a checkout of this repository). */
export const scorerMain = (root: string): string => join(root, 'dist/scorer/src/main.js');

/** Builds the scorer of the checkout at `root`; throws with tsc's output when it does not compile. */
export function buildScorer(root: string): string {
  const tsc = spawnSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', 'scorer/tsconfig.build.json'],
    { cwd: root, encoding: 'utf8' },
  );
  if (tsc.status !== 0) {
    throw new Error(
      `the scorer's build failed in ${root} (tsc -p scorer/tsconfig.build.json); fix the errors below and run again:\n${tsc.stdout}${tsc.stderr}`,
    );
  }
  const dist = join(root, 'dist');
  const link = (target: string, path: string) => {
    rmSync(path, { recursive: true, force: true });
    mkdirSync(dirname(path), { recursive: true });
    symlinkSync(target, path);
  };
  copyFileSync(join(root, 'lib/model-fetch/package.json'), join(dist, 'lib/model-fetch/package.json'));
  link(join(dist, 'lib/model-fetch'), join(dist, 'node_modules/@fnol/model-fetch'));
  // Older checkouts have no versions of the scorer's own.
  if (existsSync(join(root, 'scorer/node_modules'))) {
    link(join(root, 'scorer/node_modules'), join(dist, 'scorer/node_modules'));
  }
  return scorerMain(root);
}

/**
 * The environment the benchmarks start a scorer with: `model` served on
 * 127.0.0.1:`port`, as in a pod with the default 1 GiB limit, quiet logs, and
 * a short drain (a benchmark's idle connections would otherwise hold each stop
 * for the whole window).
 */
export function scorerEnv(model: string, port: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'production',
    MODEL_URI: `file://${model}`,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    MAX_BATCH_RECORDS: '5000',
    MEMORY_LIMIT_BYTES: String(1024 * 1024 * 1024),
    SHUTDOWN_GRACE_SECONDS: '1',
  };
}

/** Transpiles one TypeScript file with no imports of ours (the ceiling) to `out`. */
export function transpileFile(source: string, out: string): void {
  const js = ts.transpileModule(readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, js.outputText);
}
