import * as path from 'node:path';

/** The repository root, for tests and benchmarks that read its files (manifests, the CRD). */
export const repoRoot = path.resolve(__dirname, '..', '..');
/** The FnolModel CRD the test clusters install. */
export const crdPath = path.join(repoRoot, 'crds', 'fnolmodel.yaml');
