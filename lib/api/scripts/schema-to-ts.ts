/**
 * Turns the CRD's OpenAPI v3 schema into TypeScript declarations, so the
 * API's types follow the schema the API server enforces (one schema per
 * contract). Run by `npm run api:types` (lib/api/scripts/generate-types.ts);
 * a unit test fails when the committed types.generated.ts differs from what
 * this produces. Never loaded at run time.
 *
 * Two views of every object that has a field with a CRD `default`:
 *  - NAME, as read from the API server: the API server has applied the
 *    defaults, so a defaulted field is present (required in the type);
 *  - NAMEInput, as written by a user or a client: defaulted fields optional.
 * Objects without defaults below them have one interface used by both views.
 */

export interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: unknown[];
  default?: unknown;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  anyOf?: JsonSchema[];
}

/** read: defaults applied (as the API server returns it); input: as written. */
export type View = 'read' | 'input';

function pascal(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function docComment(description: string | undefined, indent: string): string {
  if (!description) return '';
  const lines = description.split('\n').map((l) => `${indent} * ${l}`.trimEnd());
  return `${indent}/**\n${lines.join('\n')}\n${indent} */\n`;
}

/** Whether a field below this schema has a default (then the two views of it differ). */
export function hasDefault(s: JsonSchema): boolean {
  const below = (c: JsonSchema): boolean => c.default !== undefined || hasDefault(c);
  if (Object.values(s.properties ?? {}).some(below)) return true;
  if (s.items && below(s.items)) return true;
  return typeof s.additionalProperties === 'object' && below(s.additionalProperties);
}

/**
 * Emits one exported interface per object schema that has properties; nested
 * objects become their own interfaces named after the path (FnolModelSpecModel),
 * in both views where they differ (FnolModelSpecModelInput).
 */
export function schemaToTypeScript(rootName: string, schema: JsonSchema): string {
  let out: string[] = [];
  const emitted = new Set<string>();

  const typeOf = (name: string, s: JsonSchema, view: View): string => {
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
        return `Array<${s.items ? typeOf(`${name}Item`, s.items, view) : 'unknown'}>`;
      case 'object':
        if (s.properties && Object.keys(s.properties).length > 0) {
          const typeName = view === 'input' && hasDefault(s) ? `${name}Input` : name;
          emit(name, typeName, s, view);
          return typeName;
        }
        if (s.additionalProperties && typeof s.additionalProperties === 'object') {
          return `Record<string, ${typeOf(`${name}Value`, s.additionalProperties, view)}>`;
        }
        return 'Record<string, unknown>';
      default:
        return 'unknown';
    }
  };

  const emit = (name: string, typeName: string, s: JsonSchema, view: View): void => {
    if (emitted.has(typeName)) return;
    emitted.add(typeName);
    const required = new Set(s.required ?? []);
    const fields: string[] = [];
    for (const [prop, sub] of Object.entries(s.properties ?? {})) {
      const t = typeOf(name + pascal(prop), sub, view);
      const present = required.has(prop) || (view === 'read' && sub.default !== undefined);
      fields.push(`${docComment(sub.description, '  ')}  ${prop}${present ? '' : '?'}: ${t};`);
    }
    const note =
      typeName === name && hasDefault(s)
        ? `As read from the API server: fields the CRD defaults are present. Written as ${name}Input.`
        : typeName !== name
          ? `As written: fields the CRD defaults may be left out. Read back as ${name}.`
          : undefined;
    const description = [s.description, note].filter((d) => d !== undefined).join('\n\n');
    out.push(
      `${docComment(description || undefined, '')}export interface ${typeName} {\n${fields.join('\n')}\n}\n`,
    );
  };

  // Children are emitted before their parents; reverse so each root comes first.
  typeOf(rootName, schema, 'read');
  const read = out.reverse();
  out = [];
  typeOf(rootName, schema, 'input');
  return [...read, ...out.reverse()].join('\n');
}
