/**
 * The mocha tiers (test/tiers.cjs) split the suites without losing one:
 * every slow suite exists and is one of the local ones, npm run test:unit and
 * npm run test:slow together run what the pipeline's Test stage runs, and
 * npm test's own glob covers every tier.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

interface Tiers {
  local: string[];
  processes: string[];
  stress: string[];
}
interface MochaConfig {
  spec: string[];
  ignore?: string[];
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = <T>(file: string): T => require(path.join(ROOT, file)) as T;

/** The test files under the repository's source folders, relative to the root. */
function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(ROOT, dir))) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const rel = path.posix.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) out.push(...testFiles(rel));
    else if (name.endsWith('.test.ts')) out.push(rel);
  }
  return out;
}

/** A mocha spec glob as a regular expression: braces, `**` for any folders, `*` within a name. */
function globRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (glob.startsWith('**/', i)) {
      source += '(?:[^/]+/)*';
      i += 2;
    } else if (c === '*') source += '[^/]*';
    else if (c === '{') source += '(?:';
    else if (c === '}') source += ')';
    else if (c === ',') source += '|';
    else source += c.replace(/[.+?^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

const matching = (globs: readonly string[], files: readonly string[]): Set<string> => {
  const patterns = globs.map(globRegExp);
  return new Set(files.filter((f) => patterns.some((p) => p.test(f))));
};

describe('test tiers: unit and slow together run every local suite', () => {
  const all = ['lib', 'scorer', 'operator', 'cli', 'cluster', 'pipeline', 'bench', 'test'].flatMap(testFiles);
  const tiers = load<Tiers>('test/tiers.cjs');
  const local = matching(tiers.local, all);
  const stress = matching(tiers.stress, all);

  it('every slow suite is an existing local suite (a renamed file is not silently lost)', () => {
    assert.ok(local.size > 0 && stress.size > 0, 'the tier globs match no test file');
    for (const file of tiers.processes) {
      assert.ok(all.includes(file), `test/tiers.cjs lists ${file}, which does not exist`);
      assert.ok(
        local.has(file),
        `${file} is in the slow tier but no local glob of test/tiers.cjs matches it`,
      );
    }
  });

  it('npm run test:unit runs the local suites but the slow ones; test:slow runs the slow and stress ones', () => {
    const unit = load<MochaConfig>('.mocharc.unit.cjs');
    const slow = load<MochaConfig>('.mocharc.slow.cjs');
    const pipeline = load<MochaConfig>('.mocharc.pipeline.cjs');
    const unitFiles = matching(unit.spec, all);
    for (const file of matching(unit.ignore ?? [], all)) unitFiles.delete(file);
    const slowFiles = matching(slow.spec, all);
    const union = new Set([...unitFiles, ...slowFiles]);
    const expected = new Set([...local, ...stress]);
    assert.deepEqual(
      [...union].sort(),
      [...expected].sort(),
      'unit + slow differ from the local and stress suites',
    );
    for (const file of unitFiles) assert.ok(!slowFiles.has(file), `${file} is in both tiers`);
    assert.equal(pipeline.ignore, undefined, 'the pipeline runs every tier: no ignore');
    assert.deepEqual([...matching(pipeline.spec, all)].sort(), [...expected].sort());
    const scripts = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    assert.equal(scripts['test:unit'], 'mocha --config .mocharc.unit.cjs');
    assert.equal(scripts['test:slow'], 'mocha --config .mocharc.slow.cjs');
    assert.match(
      readFileSync(path.join(ROOT, 'pipeline/test.sh'), 'utf8'),
      /mocha --config \.mocharc\.pipeline\.cjs /,
    );
  });

  it("npm test's glob (scripts/test.sh) covers both tiers", () => {
    const script = readFileSync(path.join(ROOT, 'scripts/test.sh'), 'utf8');
    const glob = /npx mocha --reporter spec '([^']+)'/.exec(script)?.[1];
    assert.ok(glob !== undefined, 'scripts/test.sh no longer runs mocha over one glob');
    const everything = matching([glob], all);
    for (const file of [...local, ...stress])
      assert.ok(everything.has(file), `npm test does not run ${file}`);
  });
});
