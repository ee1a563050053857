/**
 * The FnolModel API lives in lib/api only: no other TypeScript file spells the
 * API group or redeclares the API's names, labels, annotations or types. The
 * CRD, the manifests and YAML fixtures spell them too; they are not scanned.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GROUP, KIND, PLURAL, VERSION } from '@fnol/api';

const ROOT = path.resolve(__dirname, '..', '..');
const API_DIR = 'lib/api/';

/** Every tracked or new (not ignored) TypeScript file. */
function sources(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return out
    .split('\n')
    .filter((f) => f !== '' && !f.includes('node_modules/'))
    .filter((f) => {
      try {
        readFileSync(path.join(ROOT, f));
        return true;
      } catch {
        return false; // deleted in the working tree
      }
    });
}

/** `const X = 'v'` (or let/var, exported or not) for one of the API's values. */
function constantDeclarations(text: string, values: string[]): string[] {
  const quoted = values.map((v) => v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|');
  const re = new RegExp(
    String.raw`\b(?:const|let|var)\s+\w+\s*(?::[^=]+)?=\s*['"\`](?:${quoted})['"\`]`,
    'g',
  );
  return text.match(re) ?? [];
}

describe('the FnolModel API module is the only place the API is declared', function () {
  const all = sources();
  const files = all.filter((f) => !f.startsWith(API_DIR));

  it('finds the sources it checks', function () {
    for (const f of ['operator/src/main.ts', 'cli/src/rollout.ts', 'test/e2e/serving.test.ts'])
      assert.ok(files.includes(f), `${f} is not among the scanned files`);
    assert.ok(!files.some((f) => f.startsWith(API_DIR)));
  });

  it(`no TypeScript file outside ${API_DIR} spells the API group`, function () {
    const offenders = files.filter((f) => readFileSync(path.join(ROOT, f), 'utf8').includes(GROUP));
    assert.deepEqual(
      offenders,
      [],
      `import GROUP, API_VERSION, Labels or Annotations from the API module instead of spelling "${GROUP}"`,
    );
  });

  it('no file outside the API module declares a constant holding an API name', function () {
    const offenders: string[] = [];
    for (const f of files) {
      const found = constantDeclarations(readFileSync(path.join(ROOT, f), 'utf8'), [VERSION, KIND, PLURAL]);
      for (const d of found) offenders.push(`${f}: ${d}`);
    }
    assert.deepEqual(offenders, [], 'import VERSION, KIND or PLURAL from the API module');
  });

  it('no file outside the API module redeclares the FnolModel types', function () {
    const re =
      /^\s*(?:export\s+)?(?:interface|type)\s+(FnolModel(?:Spec|Status|Object)?\w*|ModelSpec|Condition)\s*(?:<[^>]*>\s*)?(?:=|\{|extends)/gm;
    const offenders: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(path.join(ROOT, f), 'utf8').matchAll(re)) {
        if (m[1] === 'FnolModelApi') continue; // fnolctl's client interface, not an API type
        offenders.push(`${f}: ${m[1]}`);
      }
    }
    assert.deepEqual(offenders, [], 'use the types the API module exports');
  });

  it('no program reads the CRD or loads the type generator or prettier at run time', function () {
    const runtime = all.filter((f) => /^(operator|scorer|cli|lib\/[^/]+)\/src\//.test(f));
    assert.ok(runtime.includes('operator/src/main.ts'));
    const offenders = runtime.filter((f) =>
      /from '[^']*(prettier|\/scripts\/)[^']*'|import\('prettier'\)|'crds'|['"`][^'"`\n]*crds\/fnolmodel\.yaml/.test(
        readFileSync(path.join(ROOT, f), 'utf8'),
      ),
    );
    assert.deepEqual(
      offenders,
      [],
      'the generator is lib/api/scripts (npm run api:types), not run-time code',
    );
  });

  it('the checks catch a redeclaration', function () {
    assert.deepEqual(constantDeclarations(`export const PLURAL = '${PLURAL}';`, [PLURAL]), [
      `const PLURAL = '${PLURAL}'`,
    ]);
    assert.deepEqual(constantDeclarations(`const VERSION = /^\\d+$/;`, [VERSION]), []);
  });
});
