import { strict as assert } from 'node:assert';
import {
  apiPath,
  fnolModelPath,
  Kinds,
  sameCredentials,
  sameModel,
  sameModelSpec,
  type FnolModelSpecModel,
} from '../src/index';

const SHA = 'a'.repeat(64);
const m = (over: Partial<FnolModelSpecModel> = {}): FnolModelSpecModel => ({
  version: '1.0.0',
  uri: 'https://acct.blob.core.windows.net/models/fnol-1.0.0.onnx',
  sha256: SHA,
  ...over,
});

describe('FnolModel API module', function () {
  describe('apiPath', function () {
    it('builds core, grouped, namespaced, cluster-scoped and subresource paths', function () {
      assert.equal(apiPath(Kinds.Service, { namespace: 'ns' }), '/api/v1/namespaces/ns/services');
      assert.equal(
        apiPath(Kinds.Deployment, { namespace: 'ns', name: 'fnol' }),
        '/apis/apps/v1/namespaces/ns/deployments/fnol',
      );
      assert.equal(apiPath(Kinds.Node, { name: 'kwok-node-1' }), '/api/v1/nodes/kwok-node-1');
      assert.equal(apiPath(Kinds.FnolModel), '/apis/serving.fnol.io/v1alpha1/fnolmodels');
      assert.equal(
        fnolModelPath('ns', 'fnol', 'status'),
        '/apis/serving.fnol.io/v1alpha1/namespaces/ns/fnolmodels/fnol/status',
      );
    });

    it('refuses a subresource without an object name', function () {
      assert.throws(
        () => apiPath(Kinds.FnolModel, { namespace: 'ns', subresource: 'status' }),
        /object name/,
      );
    });

    it('escapes names so a name cannot climb out of its path', function () {
      assert.equal(
        apiPath(Kinds.Secret, { namespace: 'ns', name: '../x' }),
        '/api/v1/namespaces/ns/secrets/..%2Fx',
      );
    });
  });

  describe('the same-model rule', function () {
    it('is the same model when version, uri and sha256 match', function () {
      assert.ok(sameModel(m(), m()));
      assert.ok(!sameModel(m(), m({ version: '1.1.0' })));
      assert.ok(!sameModel(m(), m({ uri: 'https://acct.blob.core.windows.net/models/other.onnx' })));
      assert.ok(!sameModel(m(), m({ sha256: 'b'.repeat(64) })));
      assert.ok(!sameModel(undefined, m()));
      assert.ok(!sameModel(m(), undefined));
    });

    it('leaves credentials out of the identity but not out of the spec comparison', function () {
      const a = m({ credentialsSecretRef: { name: 'sas', key: 'sasToken' } });
      const b = m({ credentialsSecretRef: { name: 'other', key: 'sasToken' } });
      assert.ok(sameModel(a, b));
      assert.ok(!sameCredentials(a, b));
      assert.ok(!sameModelSpec(a, b));
      assert.ok(!sameModelSpec(a, m()));
      assert.ok(sameModelSpec(a, m({ credentialsSecretRef: { name: 'sas', key: 'sasToken' } })));
      assert.ok(sameModelSpec(m(), m()));
    });
  });
});
