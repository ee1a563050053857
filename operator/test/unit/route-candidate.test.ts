import { strict as assert } from 'node:assert';
import type { FnolModel } from '@fnol/api';
import { ROUTE_ACCEPT_GRACE_MS, routeMayReachCandidate } from '../../src/reconcilers/httproute';

const fm = { metadata: { name: 'fnol', namespace: 'claims' } } as FnolModel;
const NOW = new Date('2026-12-01T10:00:00.000Z');

function route(backends: string[], generation: number, observed?: number): unknown {
  return {
    metadata: { generation },
    spec: { rules: [{ backendRefs: backends.map((name) => ({ name, port: 80, weight: 50 })) }] },
    ...(observed === undefined
      ? {}
      : { status: { parents: [{ conditions: [{ type: 'Accepted', observedGeneration: observed }] }] } }),
  };
}

describe('the candidate is kept until the gateway no longer routes to it', () => {
  it('no route (an Ingress or no gateway): nothing routes to the candidate', () => {
    assert.equal(routeMayReachCandidate(undefined, fm, undefined, NOW), false);
  });

  it('a route that still names the candidate keeps it, reported or not', () => {
    assert.equal(routeMayReachCandidate(route(['fnol', 'fnol-canary'], 3, 3), fm, undefined, NOW), true);
  });

  it('a route without it, its generation reported by the controller: the candidate may go', () => {
    assert.equal(routeMayReachCandidate(route(['fnol'], 4, 4), fm, NOW.getTime(), NOW), false);
  });

  it('a route without it, not reported yet: kept for the grace time after the write, then let go', () => {
    const r = route(['fnol'], 4, 3);
    assert.equal(routeMayReachCandidate(r, fm, NOW.getTime() - 1000, NOW), true);
    assert.equal(routeMayReachCandidate(r, fm, NOW.getTime() - ROUTE_ACCEPT_GRACE_MS - 1, NOW), false);
    // Written by another process (a restarted operator): the controller had time already.
    assert.equal(routeMayReachCandidate(r, fm, undefined, NOW), false);
  });
});
