import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { crdSchema, generatedTypesPath, loadCrd, renderGeneratedTypes } from '../scripts/crd';
import { schemaToTypeScript, type JsonSchema } from '../scripts/schema-to-ts';

describe('CRD and TypeScript types', () => {
  it('types.generated.ts is what the CRD schema generates (run npm run api:types after editing the CRD)', async () => {
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

describe('the generator: two views of defaulted fields', () => {
  const schema: JsonSchema = {
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string' },
      replicas: { type: 'integer', default: 2 },
      note: { type: 'string' },
      scaling: {
        type: 'object',
        properties: { min: { type: 'integer', default: 1 }, max: { type: 'integer' } },
      },
      plain: { type: 'object', properties: { a: { type: 'string' } } },
    },
  };
  const ts = schemaToTypeScript('Thing', schema);
  const body = (name: string): string => {
    const m = new RegExp(`export interface ${name} \\{\\n([^}]*)\\}`).exec(ts);
    assert.ok(m, `no interface ${name} in:\n${ts}`);
    return m[1]!.replace(/\s+/g, ' ').trim();
  };

  it('as read, a field the CRD defaults is present; as written it is optional', () => {
    assert.equal(
      body('Thing'),
      'name: string; replicas: number; note?: string; scaling?: ThingScaling; plain?: ThingPlain;',
    );
    assert.equal(
      body('ThingInput'),
      'name: string; replicas?: number; note?: string; scaling?: ThingScalingInput; plain?: ThingPlain;',
    );
    assert.equal(body('ThingScaling'), 'min: number; max?: number;');
    assert.equal(body('ThingScalingInput'), 'min?: number; max?: number;');
  });

  it('an object without defaults below it has one interface for both views', () => {
    assert.equal(body('ThingPlain'), 'a?: string;');
    assert.ok(!ts.includes('ThingPlainInput'));
  });

  it('the FnolModel types: replicas, resources and the defaulted nested fields are present as read', async () => {
    const generated = await renderGeneratedTypes();
    for (const field of [
      'replicas: number;',
      'resources: FnolModelSpecResources;',
      'path: string;',
      'modelName: string;',
    ])
      assert.ok(generated.includes(field), `types.generated.ts lacks "${field}"`);
    // An interface ends at the first line that is only "}" (descriptions may hold braces).
    const input = /export interface FnolModelSpecInput \{\n([\s\S]*?)\n\}/.exec(generated);
    assert.ok(input, 'no interface FnolModelSpecInput');
    assert.match(input[1] as string, /replicas\?: number;/);
    assert.match(input[1] as string, /modelName\?: string;/);
  });
});
