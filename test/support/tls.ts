/** A throw-away TLS identity for tests, made with openssl. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface SelfSigned {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/**
 * Writes a self-signed P-256 certificate valid for one day into `dir`
 * (cert.pem, key.pem). `subjectAltName` is in openssl's form: "DNS:host" or "IP:127.0.0.1".
 */
export function selfSignedCert(dir: string, commonName: string, subjectAltName: string): SelfSigned {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      `subjectAltName=${subjectAltName}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}
