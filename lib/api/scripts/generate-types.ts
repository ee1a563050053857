/**
 * Regenerates lib/api/src/types.generated.ts from crds/fnolmodel.yaml.
 * Usage: npm run api:types
 */
import { writeFileSync } from 'node:fs';
import { generatedTypesPath, renderGeneratedTypes } from './crd';

void renderGeneratedTypes().then((text) => {
  writeFileSync(generatedTypesPath, text);
  console.log(`wrote ${generatedTypesPath}`);
});
