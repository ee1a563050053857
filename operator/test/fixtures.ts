import { parseAllowedHosts } from '@fnol/model-fetch';
import { API_VERSION, KIND, type FnolModel } from '@fnol/api';
import type { DesiredStateConfig } from '../src/reconcilers/common';

export const SHA_A = 'a'.repeat(64);
export const SHA_B = 'b'.repeat(64);

export const testConfig: DesiredStateConfig = {
  defaultScorerImage: 'fnol-scorer:test',
  ingressControllerNamespaces: ['ingress-nginx'],
  monitoringNamespaces: ['monitoring'],
  scorerUser: 10001,
  progressDeadlineSeconds: 600,
  scorerLogLevel: 'info',
  modelStoreCidrs: ['0.0.0.0/0'],
  modelStorePorts: [443],
  dnsNamespace: 'kube-system',
  dnsPodLabels: { 'k8s-app': 'kube-dns' },
  operatorNamespace: 'fnol-system',
  modelPolicy: {
    allowedHosts: parseAllowedHosts('*.blob.core.windows.net,models.example.test'),
    localMode: false,
  },
};

/** A FnolModel as the API server returns it (CRD defaults applied). */
export function fnolModel(overrides: Partial<FnolModel['spec']> = {}, name = 'fnol'): FnolModel {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: 'claims', uid: '0b8a6f7e-1111-2222-3333-444455556666', generation: 1 },
    spec: {
      model: { version: '1.0.0', uri: 'https://models.example.test/fnol/fnol-1.0.0.onnx', sha256: SHA_A },
      modelName: 'fnol',
      replicas: 2,
      resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
      ...overrides,
    },
  };
}
