// Bundles fnolctl into one file that needs only Node: build/kubectl-fnol, a
// script with a shebang, executable. On PATH it is also the kubectl plugin
// `kubectl fnol`. Usage: npm run cli:bundle [-- --out FILE]
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = path.resolve(__dirname, '..', '..');

/** The commit the bundle is built from, "unknown" outside a git checkout. */
function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export async function bundle(out: string): Promise<{ file: string; bytes: number }> {
  const file = path.resolve(ROOT, out);
  mkdirSync(path.dirname(file), { recursive: true });
  const result = await build({
    entryPoints: [path.join(ROOT, 'cli/src/fnolctl.ts')],
    outfile: file,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    // Some dependencies ship ESM that calls createRequire(import.meta.url); in
    // one CommonJS file that URL is the file's own.
    banner: {
      js: "#!/usr/bin/env node\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;",
    },
    define: { FNOLCTL_COMMIT: JSON.stringify(commit()), 'import.meta.url': '__bundleUrl' },
    logLevel: 'warning',
  });
  if (result.errors.length > 0) throw new Error(`esbuild reported ${result.errors.length} errors`);
  chmodSync(file, 0o755);
  return { file, bytes: statSync(file).size };
}

if (require.main === module) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'build/kubectl-fnol' } } });
  bundle(values.out).then(
    ({ file, bytes }) =>
      console.log(`fnolctl bundled: ${path.relative(ROOT, file)} (${(bytes / 1024).toFixed(0)} KiB)`),
    (err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
