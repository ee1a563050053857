/**
 * Turns the CRD's OpenAPI v3 schema into TypeScript declarations, so the
 * operator's types follow the schema the API server enforces (one schema per
 * contract). Used by `npm run operator:types`; a unit test fails when the
 * committed types.generated.ts differs from what this produces.
 */

export interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: unknown[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  anyOf?: JsonSchema[];
}

function pascal(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function docComment(description: string | undefined, indent: string): string {
  if (!description) return '';
  const lines = description.split('\n').map((l) => `${indent} * ${l}`.trimEnd());
  return `${indent}/**\n${lines.join('\n')}\n${indent} */\n`;
}

/**
 * Emits one exported interface per object schema that has properties; nested
 * objects become their own interfaces named after the path (FnolModelSpecModel).
 */
export function schemaToTypeScript(rootName: string, schema: JsonSchema): string {
  const out: string[] = [];

  const typeOf = (name: string, s: JsonSchema): string => {
    if (s['x-kubernetes-int-or-string']) return 'number | string';
    if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
    switch (s.type) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array':
        return `Array<${s.items ? typeOf(`${name}Item`, s.items) : 'unknown'}>`;
      case 'object':
        if (s.properties && Object.keys(s.properties).length > 0) {
          emit(name, s);
          return name;
        }
        if (s.additionalProperties && typeof s.additionalProperties === 'object') {
          return `Record<string, ${typeOf(`${name}Value`, s.additionalProperties)}>`;
        }
        return 'Record<string, unknown>';
      default:
        return 'unknown';
    }
  };

  const emit = (name: string, s: JsonSchema): void => {
    const required = new Set(s.required ?? []);
    const fields: string[] = [];
    for (const [prop, sub] of Object.entries(s.properties ?? {})) {
      const t = typeOf(name + pascal(prop), sub);
      fields.push(`${docComment(sub.description, '  ')}  ${prop}${required.has(prop) ? '' : '?'}: ${t};`);
    }
    out.push(`${docComment(s.description, '')}export interface ${name} {\n${fields.join('\n')}\n}\n`);
  };

  typeOf(rootName, schema);
  // Children are emitted before their parents; reverse so the root comes first.
  return out.reverse().join('\n');
}
