// The production npm package list (scripts/prod-deps.ts) and the record of the
// last advisory check (docs/npm-production-deps.txt): a change of production
// dependencies fails here until someone has checked the new versions.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CHECKED_LIST,
  ROOT,
  compare,
  listLines,
  productionPackages,
  readCheckedList,
} from '../../scripts/prod-deps';

describe('production npm dependencies (scripts/prod-deps.ts)', function () {
  it('follows every workspace, names the workspace that brings a package in, and lists one workspace alone', function () {
    const lock = {
      lockfileVersion: 3,
      packages: {
        '': { name: 'root', devDependencies: { mocha: '^12' } },
        scorer: { name: '@fnol/scorer', dependencies: { express: '^5', '@fnol/model-fetch': '0.1.0' } },
        operator: { name: '@fnol/operator', dependencies: { pino: '^10' } },
        'lib/model-fetch': { name: '@fnol/model-fetch', dependencies: { ms: '^2' } },
        'node_modules/@fnol/model-fetch': { resolved: 'lib/model-fetch', link: true },
        'node_modules/@fnol/scorer': { resolved: 'scorer', link: true },
        'node_modules/express': { version: '5.3.0' },
        'node_modules/pino': { version: '10.4.0' },
        'node_modules/ms': { version: '2.1.3' },
        'node_modules/mocha': { version: '12.0.3', dev: true },
      },
    };
    assert.deepEqual(
      productionPackages(lock).map((p) => `${p.name} (${p.via})`),
      ['express (@fnol/scorer > express)', 'ms (@fnol/model-fetch > ms)', 'pino (@fnol/operator > pino)'],
    );
    assert.deepEqual(listLines(productionPackages(lock, 'operator')), ['pino@10.4.0']);
    assert.deepEqual(listLines(productionPackages(lock, 'scorer')), ['express@5.3.0', 'ms@2.1.3']);
    assert.throws(() => productionPackages(lock, 'nope'), /no workspace "nope"/);
  });

  it('lists production packages only, resolved the way node does, aliases by their real name', function () {
    const lock = {
      lockfileVersion: 3,
      packages: {
        '': {
          dependencies: { express: '^5', request: 'npm:@cypress/request@^4' },
          devDependencies: { mocha: '^12' },
        },
        'node_modules/express': { version: '5.3.0', dependencies: { qs: '^6' } },
        'node_modules/qs': { version: '6.17.1' },
        'node_modules/request': { name: '@cypress/request', version: '4.0.1', dependencies: { qs: '^6.5' } },
        'node_modules/request/node_modules/qs': { version: '6.5.5' },
        'node_modules/mocha': { version: '12.0.3', dev: true, dependencies: { qs: '^6' } },
      },
    };
    const pkgs = productionPackages(lock);
    assert.deepEqual(listLines(pkgs), ['@cypress/request@4.0.1', 'express@5.3.0', 'qs@6.17.1', 'qs@6.5.5']);
    assert.equal(pkgs.find((p) => p.version === '6.5.5')?.via, 'request > qs');
    assert.equal(pkgs.find((p) => p.version === '6.17.1')?.via, 'express > qs');
    assert.throws(() => productionPackages({ lockfileVersion: 1 }), /lockfile version 2 or 3 needed/);
  });

  it('names what was added and removed since the last check', function () {
    assert.deepEqual(compare(['a@1', 'b@1'], ['a@1', 'b@2', 'c@1']), {
      added: ['b@2', 'c@1'],
      removed: ['b@1'],
    });
  });

  it('package-lock.json holds exactly the production packages last checked against the advisories', function () {
    const current = listLines(
      productionPackages(JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'))),
    );
    const { added, removed } = compare(readCheckedList(), current);
    assert.ok(
      added.length === 0 && removed.length === 0,
      `production dependencies changed since the last advisory check (${path.relative(ROOT, CHECKED_LIST)}):\n` +
        added.map((l) => `  new or changed: ${l}`).join('\n') +
        '\n' +
        removed.map((l) => `  gone: ${l}`).join('\n') +
        '\ncheck the new versions against the published advisories (docs/security.md), then: npm run deps:prod -- --write',
    );
    // The security record covers the packages the issue names.
    const security = readFileSync(path.join(ROOT, 'docs', 'security.md'), 'utf8');
    for (const name of [
      '@kubernetes/client-node',
      'express',
      '@azure/storage-blob',
      'ajv',
      'pino',
      'prom-client',
      'onnxruntime-node',
    ]) {
      const version = current.find((l) => l.startsWith(`${name}@`))?.slice(name.length + 1);
      assert.ok(version, `${name} is not a production dependency`);
      assert.ok(
        security.includes(`\`${name}\` | ${version}`),
        `docs/security.md does not record ${name} ${version}`,
      );
    }
  });
});
