import assert from 'node:assert/strict';
import path from 'node:path';
import YAML from 'yaml';
import { ROOT } from '../src/schema';
import { renderOperator } from '../src/render-operator';

describe('pipeline: operator install rendered with the run images', function () {
  const operator = 'fnolacr.azurecr.io/fnol/operator:4711';
  const scorer = 'fnolacr.azurecr.io/fnol/scorer:4711';

  it('sets the operator image and FNOL_SCORER_IMAGE, keeps every resource of the kustomization', function () {
    const docs = YAML.parseAllDocuments(renderOperator(path.join(ROOT, 'manifests'), operator, scorer)).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string } },
    );
    const kinds = docs.map((d) => d.kind);
    assert.ok(
      kinds.includes('Namespace') && kinds.includes('ServiceAccount') && kinds.includes('Deployment'),
      kinds.join(),
    );
    assert.ok(!kinds.includes('Kustomization'));
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: {
        template: { spec: { containers: { image: string; env: { name: string; value?: string }[] }[] } };
      };
    };
    const container = deployment.spec.template.spec.containers[0]!;
    assert.equal(container.image, operator);
    assert.equal(container.env.find((e) => e.name === 'FNOL_SCORER_IMAGE')?.value, scorer);
  });

  it('refuses something that is not an image reference', function () {
    assert.throws(
      () => renderOperator(path.join(ROOT, 'manifests'), 'bad image', scorer),
      /--operator-image "bad image"/,
    );
  });
});
