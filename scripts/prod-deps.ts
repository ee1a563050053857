// The production npm packages, from package-lock.json: every package that a
// `npm ci --omit=dev` installs (what the scorer and operator images carry),
// with its version and the dependency path that brings it in. It replaces
// `npm audit` where the registry's audit endpoint is not reachable: the list is
// what one checks against the published advisories (docs/security.md, "npm
// production dependencies"), and docs/npm-production-deps.txt records the list
// that was last checked.
//
//   npm run deps:prod                  table: package, version, brought in by
//   npm run deps:prod -- --json        the same as JSON
//   npm run deps:prod -- --check       exit 1 if the lockfile differs from the checked list, naming each change
//   npm run deps:prod -- --write       record the current list as checked (after checking it)
//   npm run deps:prod -- --workspace scorer   only what one workspace installs (what its image carries)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

export const ROOT = path.resolve(__dirname, '..');
export const CHECKED_LIST = path.join(ROOT, 'docs', 'npm-production-deps.txt');

interface LockEntry {
  /** Set when the package is installed under an alias (npm:OTHER@VERSION). */
  name?: string;
  version?: string;
  dev?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  /** A workspace's node_modules entry: a link to the workspace folder (resolved). */
  link?: boolean;
  resolved?: string;
}

export interface ProdPackage {
  name: string;
  version: string;
  /** How it is reached from package.json, e.g. "express > body-parser > qs". */
  via: string;
  optional: boolean;
}

/** Every production package in a lockfile (v2/v3 `packages` map), one entry per name@version. */
export function productionPackages(
  lock: {
    lockfileVersion?: number;
    packages?: Record<string, LockEntry>;
  },
  /** Only this workspace's packages (its folder, e.g. "scorer"); all workspaces and the root when absent. */
  workspace?: string,
): ProdPackage[] {
  if (!lock.packages || (lock.lockfileVersion ?? 0) < 2) {
    throw new Error(
      'package-lock.json has no "packages" map (lockfile version 2 or 3 needed); run npm install with npm 7 or later',
    );
  }
  const packages = lock.packages;
  const nameOf = (key: string) => key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
  // Resolve a dependency the way node does: nearest node_modules up from the dependent.
  const resolve = (from: string, dep: string): string | undefined => {
    let base = from;
    for (;;) {
      const key = `${base ? `${base}/` : ''}node_modules/${dep}`;
      if (packages[key]) return key;
      if (!base) return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  // A workspace's node_modules entry is a link to its folder: follow it.
  const target = (key: string): string => {
    const entry = packages[key]!;
    return entry.link && entry.resolved !== undefined && packages[entry.resolved] ? entry.resolved : key;
  };
  // Breadth-first from the production dependencies of the root and of every
  // workspace (npm workspaces: the folders without node_modules/ in their key),
  // so the first path found is a shortest one.
  const roots = Object.keys(packages).filter(
    (k) => !k.includes('node_modules/') && (workspace === undefined || k === workspace),
  );
  if (workspace !== undefined && roots.length === 0) {
    throw new Error(`no workspace "${workspace}" in the lockfile; name its folder, e.g. scorer or lib/api`);
  }
  const via = new Map<string, string>();
  const queue: [string, string][] = [];
  for (const from of roots) {
    const rootEntry = packages[from]!;
    const prefix = from === '' ? '' : `${rootEntry.name ?? from} > `;
    for (const dep of Object.keys({ ...rootEntry.dependencies, ...rootEntry.optionalDependencies })) {
      const key = resolve(from, dep);
      if (key && !via.has(key)) {
        via.set(key, `${prefix}${dep}`);
        queue.push([key, `${prefix}${dep}`]);
      }
    }
  }
  while (queue.length > 0) {
    const [key, trail] = queue.shift()!;
    const from = target(key);
    const entry = packages[from]!;
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const child = resolve(from, dep);
      if (child && !via.has(child)) {
        via.set(child, `${trail} > ${dep}`);
        queue.push([child, `${trail} > ${dep}`]);
      }
    }
  }
  const out = new Map<string, ProdPackage>();
  for (const [key, trail] of via) {
    const entry = packages[key]!;
    // The workspaces themselves are this repository's code, not registry packages.
    if (entry.dev || entry.link) continue;
    // An alias (e.g. request -> @cypress/request) is listed by the package it really is.
    const name = entry.name ?? nameOf(key);
    const id = `${name}@${entry.version ?? '?'}`;
    if (!out.has(id))
      out.set(id, { name, version: entry.version ?? '?', via: trail, optional: entry.optional === true });
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

/** The checked-list lines: "name@version", sorted. */
export function listLines(pkgs: ProdPackage[]): string[] {
  return pkgs.map((p) => `${p.name}@${p.version}`);
}

/** What changed between the checked list and the lockfile. */
export function compare(checked: string[], current: string[]): { added: string[]; removed: string[] } {
  const a = new Set(checked);
  const b = new Set(current);
  return { added: current.filter((l) => !a.has(l)), removed: checked.filter((l) => !b.has(l)) };
}

export function readCheckedList(file = CHECKED_LIST): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      write: { type: 'boolean', default: false },
      lockfile: { type: 'string', default: path.join(ROOT, 'package-lock.json') },
      workspace: { type: 'string' },
    },
  });
  if (values.workspace !== undefined && (values.write || values.check)) {
    console.error('--workspace lists one workspace; --check and --write cover all of them');
    return 2;
  }
  const pkgs = productionPackages(JSON.parse(readFileSync(values.lockfile, 'utf8')), values.workspace);
  if (values.write) {
    const header = [
      '# Production npm packages (name@version) as last checked against the published advisories.',
      '# Written by: npm run deps:prod -- --write. The check and its date: docs/security.md.',
    ];
    writeFileSync(CHECKED_LIST, [...header, ...listLines(pkgs), ''].join('\n'));
    console.log(`wrote ${path.relative(ROOT, CHECKED_LIST)} (${pkgs.length} packages)`);
    return 0;
  }
  if (values.check) {
    const { added, removed } = compare(readCheckedList(), listLines(pkgs));
    if (added.length === 0 && removed.length === 0) {
      console.log(
        `the ${pkgs.length} production packages are the ones last checked (${path.relative(ROOT, CHECKED_LIST)})`,
      );
      return 0;
    }
    for (const l of added) console.log(`new or changed, not checked yet: ${l}`);
    for (const l of removed) console.log(`gone from the lockfile:          ${l}`);
    console.log(
      '\nCheck each new version against the published advisories (docs/security.md, "npm production dependencies"), ' +
        'update that section, then record the list: npm run deps:prod -- --write',
    );
    return 1;
  }
  if (values.json) {
    console.log(JSON.stringify(pkgs, null, 2));
    return 0;
  }
  const width = Math.max(...pkgs.map((p) => p.name.length), 7);
  const vwidth = Math.max(...pkgs.map((p) => p.version.length), 7);
  console.log(`${'package'.padEnd(width)}  ${'version'.padEnd(vwidth)}  brought in by`);
  for (const p of pkgs) {
    console.log(
      `${p.name.padEnd(width)}  ${p.version.padEnd(vwidth)}  ${p.via}${p.optional ? ' (optional)' : ''}`,
    );
  }
  console.log(`\n${pkgs.length} production packages (package-lock.json, devDependencies excluded)`);
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 2;
  }
}
