/**
 * Regenerates operator/src/api/types.generated.ts from crds/fnolmodel.yaml.
 * Usage: npm run operator:types
 */
import { writeFileSync } from 'node:fs';
import { generatedTypesPath, renderGeneratedTypes } from '../src/api/crd';

void renderGeneratedTypes().then((text) => {
  writeFileSync(generatedTypesPath, text);
  console.log(`wrote ${generatedTypesPath}`);
});
