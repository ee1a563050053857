// Renders the operator install (the resources listed in manifests/kustomization.yaml)
// as one YAML file with this run's images: the operator container's image and
// the FNOL_SCORER_IMAGE the operator gives scorer pods.
//   npm run pipeline:render-operator -- --operator-image REF --scorer-image REF [--out FILE]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';

const IMAGE_REF = /^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$/;

interface Container {
  name?: string;
  image?: string;
  env?: { name: string; value?: string }[];
}

export function renderOperator(manifestDir: string, operatorImage: string, scorerImage: string): string {
  for (const [flag, ref] of [
    ['--operator-image', operatorImage],
    ['--scorer-image', scorerImage],
  ] as const) {
    if (!IMAGE_REF.test(ref)) throw new Error(`${flag} "${ref}" is not an image reference`);
  }
  const kustomization = YAML.parse(readFileSync(path.join(manifestDir, 'kustomization.yaml'), 'utf8')) as {
    resources?: string[];
  };
  const docs: unknown[] = [];
  for (const file of kustomization.resources ?? []) {
    for (const doc of YAML.parseAllDocuments(readFileSync(path.join(manifestDir, file), 'utf8'))) {
      const obj = doc.toJS() as Record<string, unknown> | null;
      if (obj) docs.push(obj);
    }
  }
  let operators = 0;
  for (const obj of docs as {
    kind?: string;
    metadata?: { name?: string };
    spec?: Record<string, unknown>;
  }[]) {
    if (obj.kind !== 'Deployment' || obj.metadata?.name !== 'fnol-operator') continue;
    const template = obj.spec?.template as { spec?: { containers?: Container[] } } | undefined;
    for (const c of template?.spec?.containers ?? []) {
      if (c.name !== 'operator') continue;
      c.image = operatorImage;
      const scorer = c.env?.find((e) => e.name === 'FNOL_SCORER_IMAGE');
      if (!scorer)
        throw new Error('the operator container in manifests/ has no FNOL_SCORER_IMAGE variable to set');
      scorer.value = scorerImage;
      operators++;
    }
  }
  if (operators !== 1) {
    throw new Error(
      `expected one operator container in Deployment fnol-operator under ${manifestDir}, found ${operators}`,
    );
  }
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      'operator-image': { type: 'string' },
      'scorer-image': { type: 'string' },
      manifests: { type: 'string', default: 'manifests' },
      out: { type: 'string', default: 'build/manifests/operator.yaml' },
    },
  });
  if (!values['operator-image'] || !values['scorer-image']) {
    console.error(
      'usage: npm run pipeline:render-operator -- --operator-image REF --scorer-image REF [--manifests DIR] [--out FILE]',
    );
    return 2;
  }
  const text = renderOperator(values.manifests, values['operator-image'], values['scorer-image']);
  mkdirSync(path.dirname(values.out), { recursive: true });
  writeFileSync(values.out, text);
  console.log(`wrote ${values.out} (operator ${values['operator-image']}, scorer ${values['scorer-image']})`);
  return 0;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exit(1);
  }
}
