// Structural check of the Azure Pipelines YAML files against Microsoft's
// published schema (read from ../shared/azure-pipelines or FNOL_PIPELINE_SCHEMA).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import YAML from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..');

export function schemaPath(): string {
  return (
    process.env.FNOL_PIPELINE_SCHEMA ??
    path.resolve(ROOT, '..', 'shared', 'azure-pipelines', 'service-schema.json')
  );
}

export function compileSchema(file = schemaPath()): ValidateFunction {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read the Azure Pipelines schema ${file} (${(err as Error).message}); ` +
        'set FNOL_PIPELINE_SCHEMA to the path of service-schema.json',
    );
  }
  // Some of the schema's patterns are not valid under the `u` flag, and it uses
  // keywords ajv's strict mode rejects (firstProperty, doNotSuggest, ...).
  // Azure Pipelines reads scalars as text: the schema types structural values as
  // strings (`timeoutInMinutes: 30`, `clean: true`) but some task inputs as
  // booleans or integers, so scalars are coerced the way the service reads them.
  const ajv = new Ajv({ strict: false, unicodeRegExp: false, coerceTypes: true });
  return ajv.compile(JSON.parse(text) as object);
}

export function parsePipeline(file: string): unknown {
  const doc = YAML.parseDocument(readFileSync(file, 'utf8'));
  if (doc.errors.length > 0) {
    throw new Error(`${file} is not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  return doc.toJS();
}

/** Human-readable errors, the deepest (most specific) first. */
export function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  return [...(errors ?? [])]
    .sort((a, b) => b.instancePath.length - a.instancePath.length)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

/** Every step of every job of every stage, with its location. */
export function allSteps(pipeline: unknown): { where: string; step: Record<string, unknown> }[] {
  const out: { where: string; step: Record<string, unknown> }[] = [];
  const visit = (node: unknown, where: string): void => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => visit(item, `${where}[${i}]`));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'steps' && Array.isArray(value)) {
        value.forEach((step, i) =>
          out.push({ where: `${where}.steps[${i}]`, step: step as Record<string, unknown> }),
        );
      } else {
        visit(value, `${where}.${key}`);
      }
    }
  };
  visit(pipeline, '');
  return out;
}
