import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { crdSchema, generatedTypesPath, loadCrd, renderGeneratedTypes } from '../../src/api/crd';
import type { JsonSchema } from '../../src/api/schema-to-ts';

describe('CRD and TypeScript types', () => {
  it('types.generated.ts is what the CRD schema generates (run npm run operator:types after editing the CRD)', async () => {
    const committed = readFileSync(generatedTypesPath, 'utf8');
    assert.equal(committed, await renderGeneratedTypes());
  });

  it('the schema is structural: every property has a type or is int-or-string', () => {
    const walk = (s: JsonSchema, path: string): void => {
      if (!s['x-kubernetes-int-or-string'] && !s['x-kubernetes-preserve-unknown-fields']) {
        assert.ok(s.type, `${path} has no type`);
      }
      for (const [k, sub] of Object.entries(s.properties ?? {})) walk(sub, `${path}.${k}`);
      if (s.items) walk(s.items, `${path}[]`);
      if (s.additionalProperties && typeof s.additionalProperties === 'object')
        walk(s.additionalProperties, `${path}{}`);
    };
    walk(crdSchema(), '');
  });

  it('names, subresources and printer columns are as documented', () => {
    const crd = loadCrd() as unknown as {
      spec: {
        names: { kind: string; plural: string; shortNames: string[] };
        scope: string;
        versions: Array<{
          subresources: { status: object; scale: { specReplicasPath: string } };
          additionalPrinterColumns: Array<{ name: string }>;
        }>;
      };
    };
    assert.equal(crd.spec.names.kind, 'FnolModel');
    assert.equal(crd.spec.names.plural, 'fnolmodels');
    assert.deepEqual(crd.spec.names.shortNames, ['fm']);
    assert.equal(crd.spec.scope, 'Namespaced');
    const v = crd.spec.versions[0]!;
    assert.ok(v.subresources.status);
    assert.equal(v.subresources.scale.specReplicasPath, '.spec.replicas');
    const cols = v.additionalPrinterColumns.map((c) => c.name);
    for (const c of ['Version', 'Phase', 'Ready', 'URL', 'Age'])
      assert.ok(cols.includes(c), `missing column ${c}`);
  });

  it('required fields and defaults', () => {
    const spec = crdSchema().properties!.spec!;
    assert.deepEqual(spec.required, ['model']);
    assert.deepEqual(spec.properties!.model!.required, ['version', 'uri', 'sha256']);
    const raw = spec.properties as Record<string, { default?: unknown }>;
    assert.equal(raw.replicas!.default, 2);
    assert.ok(raw.resources!.default);
  });

  it('spec.modelName defaults to fnol and takes lower-case DNS-label-like names only', () => {
    const field = crdSchema().properties!.spec!.properties!.modelName as {
      type?: string;
      default?: unknown;
      pattern?: string;
      maxLength?: number;
    };
    assert.equal(field.type, 'string');
    assert.equal(field.default, 'fnol');
    assert.equal(field.maxLength, 63);
    const pattern = new RegExp(field.pattern ?? '');
    for (const good of ['fnol', 'second', 'a', 'claims.severity_v2', 'x'.repeat(63)]) {
      assert.ok(pattern.test(good), good);
    }
    for (const bad of ['', 'Second', '-fnol', 'fnol-', 'fnol/x', 'fnol x', '../fnol', 'x'.repeat(64)]) {
      assert.ok(!pattern.test(bad), bad);
    }
  });
});
