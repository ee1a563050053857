/**
 * Reads crds/fnolmodel.yaml and renders lib/api/src/types.generated.ts from it.
 * Used by the generator script and the unit test that compares the two; never
 * by a program at run time (it reads the CRD file and loads prettier).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { VERSION } from '../src/index';
import { type JsonSchema, schemaToTypeScript } from './schema-to-ts';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const crdPath = path.join(repoRoot, 'crds', 'fnolmodel.yaml');
export const generatedTypesPath = path.join(repoRoot, 'lib', 'api', 'src', 'types.generated.ts');

interface CrdDocument {
  spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: JsonSchema } }> };
}

export function loadCrd(file = crdPath): CrdDocument {
  return parse(readFileSync(file, 'utf8')) as CrdDocument;
}

export function crdSchema(file = crdPath): JsonSchema {
  const version = loadCrd(file).spec.versions.find((v) => v.name === VERSION);
  if (!version) throw new Error(`${file} has no version ${VERSION}`);
  return version.schema.openAPIV3Schema;
}

/** The generated declarations, formatted with the project's prettier settings. */
export async function renderGeneratedTypes(file = crdPath): Promise<string> {
  const schema = crdSchema(file);
  const props = schema.properties ?? {};
  const header =
    '// Generated from crds/fnolmodel.yaml by `npm run api:types`. Do not edit.\n' +
    '// A unit test fails when this file and the CRD disagree.\n\n';
  const spec = schemaToTypeScript('FnolModelSpec', props.spec as JsonSchema);
  const status = schemaToTypeScript('FnolModelStatus', props.status as JsonSchema);
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(generatedTypesPath)) ?? {};
  return prettier.format(`${header}${spec}\n${status}`, { ...options, parser: 'typescript' });
}
