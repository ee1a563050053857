// The host allow-list: what an entry matches, and entries an admin may not write.
import assert from 'node:assert/strict';
import { DEFAULT_ALLOWED_HOSTS, hostAllowed, parseAllowedHosts, PolicyConfigError } from '../src/index';

const allows = (list: string, uri: string) => hostAllowed(new URL(uri), parseAllowedHosts(list));

describe('model host allow-list', () => {
  it('matches one storage account label under *.blob.core.windows.net, and nothing else', () => {
    const ok = [
      'https://fnolprod.blob.core.windows.net/models/m.onnx',
      'https://FNOLPROD.Blob.Core.Windows.Net/m.onnx',
      'https://fnolprod.blob.core.windows.net./m.onnx',
    ];
    const refused = [
      'https://blob.core.windows.net/m.onnx',
      'https://a.b.blob.core.windows.net/m.onnx',
      'https://evilblob.core.windows.net/m.onnx',
      'https://fnolprod.blob.core.windows.net.evil.example/m.onnx',
      'https://169.254.169.254/metadata',
      'https://kubernetes.default.svc/api',
    ];
    for (const uri of ok) assert.ok(allows(DEFAULT_ALLOWED_HOSTS, uri), uri);
    for (const uri of refused) assert.ok(!allows(DEFAULT_ALLOWED_HOSTS, uri), uri);
  });

  it('matches exact hosts, IP addresses and ports', () => {
    const list = 'fnolprod.blob.core.windows.net, 10.250.0.1:10000 ,[::1]';
    assert.ok(allows(list, 'https://fnolprod.blob.core.windows.net/m.onnx'));
    assert.ok(!allows(list, 'https://other.blob.core.windows.net/m.onnx'));
    assert.ok(allows(list, 'http://10.250.0.1:10000/devstoreaccount1/m.onnx'));
    assert.ok(!allows(list, 'http://10.250.0.1:10250/pods'), 'another port of the same host');
    assert.ok(allows(list, 'http://[::1]:8080/m.onnx'));
    assert.ok(allows('example.test:443', 'https://example.test/m.onnx'), 'default https port');
  });

  it('refuses entries that would allow too much or are not hosts, naming them', () => {
    for (const entry of ['*', '*.com', 'https://x.example', 'a/b', 'x.example:99999', '*.[::1]', '::1']) {
      assert.throws(
        () => parseAllowedHosts(`good.example,${entry}`),
        (e: Error) => e instanceof PolicyConfigError && e.message.includes(JSON.stringify(entry)),
        entry,
      );
    }
    assert.throws(() => parseAllowedHosts(' , '), /MODEL_ALLOWED_HOSTS is empty/);
  });
});
