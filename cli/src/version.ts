// fnolctl's own version: the cli package's version, plus the commit the
// bundled executable was built from (set by cli/scripts/bundle.ts).
import cliPackage from '../package.json';

declare const FNOLCTL_COMMIT: string | undefined;

/** "fnolctl 0.1.0 (commit abc1234)" in the bundle, "fnolctl 0.1.0 (source)" when run from source. */
export function toolVersion(): string {
  const commit = typeof FNOLCTL_COMMIT === 'string' ? `commit ${FNOLCTL_COMMIT}` : 'source';
  return `fnolctl ${cliPackage.version} (${commit})`;
}
