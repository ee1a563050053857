/** Helpers shared with the integration suites, usable outside mocha. */
import { crdPath } from '../../operator/src/api/crd';
import type { Cluster } from '../../test/support/cluster';

export { childOperator, ModelServer, modelManifest } from '../../operator/test/integration/harness';

export async function clusterWithCrdNoMocha(cluster: Cluster): Promise<void> {
  await cluster.kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=fnol-bench',
    '-f',
    crdPath,
  ]);
  await cluster.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/fnolmodels.serving.fnol.io',
  ]);
}
