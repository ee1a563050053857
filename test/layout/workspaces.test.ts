/**
 * One package per program: each workspace's package.json lists exactly the
 * packages its src/ imports at run time (none missing, none unused), and the
 * root lists every workspace and no production dependency of its own.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const WORKSPACES = ['lib/api', 'lib/model-fetch', 'operator', 'scorer', 'cli'];

interface PackageJson {
  name: string;
  workspaces?: string[];
  exports?: unknown;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const readPackage = (dir: string): PackageJson =>
  JSON.parse(readFileSync(path.join(ROOT, dir, 'package.json'), 'utf8')) as PackageJson;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...tsFiles(full));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

/** The package a specifier names: '@scope/name' or 'name' (subpaths dropped). */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Packages imported by TypeScript source text, split into run-time and type-only imports. */
export function importsOf(text: string): { runtime: Set<string>; typeOnly: Set<string> } {
  const runtime = new Set<string>();
  const typeOnly = new Set<string>();
  const builtins = new Set(builtinModules);
  const re =
    /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'|\bimport\('([^']+)'\)|\brequire\('([^']+)'\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[3] ?? m[4] ?? m[5]!;
    if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
    (m[2] ? typeOnly : runtime).add(packageOf(spec));
  }
  for (const p of runtime) typeOnly.delete(p);
  return { runtime, typeOnly };
}

describe('npm workspaces: one package per program', function () {
  it('the root lists every workspace and has no production dependency of its own', function () {
    const root = readPackage('.');
    assert.deepEqual(root.workspaces, WORKSPACES);
    assert.deepEqual(root.dependencies ?? {}, {}, 'production dependencies belong to a workspace');
  });

  for (const ws of WORKSPACES) {
    it(`${ws}/package.json lists exactly the packages ${ws}/src imports`, function () {
      const pkg = readPackage(ws);
      const runtime = new Set<string>();
      const typeOnly = new Set<string>();
      for (const f of tsFiles(path.join(ROOT, ws, 'src'))) {
        const found = importsOf(readFileSync(f, 'utf8'));
        found.runtime.forEach((p) => runtime.add(p));
        found.typeOnly.forEach((p) => typeOnly.add(p));
      }
      const deps = Object.keys(pkg.dependencies ?? {}).sort();
      const devDeps = new Set(Object.keys(pkg.devDependencies ?? {}));
      const missing = [...runtime].filter((p) => !deps.includes(p)).sort();
      const unused = deps.filter((p) => !runtime.has(p));
      assert.deepEqual(missing, [], `${ws}: imported at run time but not in "dependencies"`);
      assert.deepEqual(unused, [], `${ws}: in "dependencies" but never imported by src/`);
      const untyped = [...typeOnly].filter((p) => !runtime.has(p) && !devDeps.has(p) && !deps.includes(p));
      assert.deepEqual(untyped, [], `${ws}: type-only imports must be declared (devDependencies)`);
    });
  }

  it('the import scanner sees multi-line, type-only and subpath imports', function () {
    const text = [
      "import {\n  a,\n  b,\n} from '@dot-i/k8s-operator';",
      "import type { V1Pod } from '@kubernetes/client-node';",
      "import Ajv from 'ajv/dist/2020';",
      "import { readFileSync } from 'node:fs';",
      "import path from 'path';",
      "import { x } from './local';",
    ].join('\n');
    const { runtime, typeOnly } = importsOf(text);
    assert.deepEqual([...runtime].sort(), ['@dot-i/k8s-operator', 'ajv']);
    assert.deepEqual([...typeOnly], ['@kubernetes/client-node']);
  });

  it('the operator and the scorer do not depend on each other or on the CLI', function () {
    const op = Object.keys(readPackage('operator').dependencies ?? {});
    const sc = Object.keys(readPackage('scorer').dependencies ?? {});
    for (const dep of ['onnxruntime-node', 'express', '@azure/storage-blob'])
      assert.ok(!op.includes(dep), dep);
    // The scorer writes payload logs to blob storage (@azure/storage-blob); it never talks to Kubernetes.
    for (const dep of ['@kubernetes/client-node', '@dot-i/k8s-operator']) assert.ok(!sc.includes(dep), dep);
  });
});
