/**
 * The Argo CD health check of FnolModel (charts/fnol-operator/files/argocd-health.lua)
 * run by real Lua interpreters (Debian's 5.4 and 5.1, scripts/lua.sh; Argo CD's
 * embedded interpreter implements Lua 5.1, so both must agree) the way Argo CD
 * runs it: the object as the global obj, the script's result read as
 * hs.status and hs.message. Each fixture is a FnolModel status as the
 * operator writes it (docs/crd-reference.md).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { API_VERSION, KIND, type Condition, type ConditionType } from '@fnol/api';
import { CHART, ROOT } from '../support/helm';

const SCRIPT = path.join(CHART, 'files', 'argocd-health.lua');

/** A JSON value as a Lua expression (arrays as sequences, objects as tables). */
function lua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(lua).join(', ')}}`;
  const entries = Object.entries(value as Record<string, unknown>).map(
    ([k, v]) => `[${JSON.stringify(k)}] = ${lua(v)}`,
  );
  return `{${entries.join(', ')}}`;
}

const LUA_VERSIONS = ['5.4', '5.1'];
const luaBins = new Map<string, string>();
let work = '';

/**
 * Runs the health check on `obj` under every Lua version: { status, message }
 * as Argo CD would read them, after asserting that the versions agree.
 */
function health(obj: unknown): { status: string; message: string } {
  const file = path.join(work, 'run.lua');
  writeFileSync(
    file,
    `obj = ${lua(obj)}\nlocal hs = dofile(${JSON.stringify(SCRIPT)})\nio.write(hs.status, "\\n", hs.message or "")\n`,
  );
  const results = LUA_VERSIONS.map((v) => {
    const out = execFileSync(luaBins.get(v)!, [file], { encoding: 'utf8' });
    const [status, ...message] = out.split('\n');
    return { status: status!, message: message.join('\n') };
  });
  for (const r of results.slice(1)) assert.deepEqual(r, results[0], 'Lua 5.1 and 5.4 disagree');
  return results[0]!;
}

type FixtureCondition = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;
const cond = (
  type: ConditionType,
  status: Condition['status'],
  reason: string,
  message = '',
): FixtureCondition => ({
  type,
  status,
  reason,
  message,
});
const fm = (generation: number, status?: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name: 'fnol', namespace: 'claims', generation },
  spec: { model: { version: '1.1.0' }, ...spec },
  ...(status ? { status } : {}),
});
const healthy = [
  cond('Ready', 'True', 'RolloutComplete', 'version 1.1.0 serves on 2 of 2 pods'),
  cond('Progressing', 'False', 'RolloutComplete'),
  cond('Degraded', 'False', 'AsExpected'),
];

describe('Argo CD health check of FnolModel (Lua)', function () {
  before(function () {
    this.timeout(120_000);
    for (const v of LUA_VERSIONS) {
      const bin = execFileSync('bash', [path.join(ROOT, 'scripts/lua.sh'), '--lua', v, '--print'], {
        encoding: 'utf8',
      }).trim();
      luaBins.set(v, bin);
    }
    work = mkdtempSync(path.join(os.tmpdir(), 'fnol-lua-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('is Progressing for a fresh FnolModel the operator has not reported on', function () {
    const hs = health(fm(1));
    assert.equal(hs.status, 'Progressing');
    assert.match(hs.message, /Waiting for the operator/);
    assert.equal(health(fm(1, { conditions: [] })).status, 'Progressing');
  });

  it('is Healthy once Ready is True, the rollout complete and the status current', function () {
    const hs = health(fm(3, { observedGeneration: 3, phase: 'Ready', conditions: healthy }));
    assert.deepEqual(hs, {
      status: 'Healthy',
      message: 'RolloutComplete: version 1.1.0 serves on 2 of 2 pods',
    });
  });

  it('is Progressing while a status describes an older generation, even a healthy one', function () {
    const hs = health(fm(4, { observedGeneration: 3, phase: 'Ready', conditions: healthy }));
    assert.equal(hs.status, 'Progressing');
    assert.match(hs.message, /observe generation 4 \(status describes 3\)/);
    assert.equal(health(fm(4, { conditions: healthy })).status, 'Progressing');
  });

  it('is Progressing during a rollout while the previous version serves (Ready True)', function () {
    const hs = health(
      fm(5, {
        observedGeneration: 5,
        phase: 'Progressing',
        conditions: [
          cond('Ready', 'True', 'PreviousVersionServing', 'version 1.0.0 serves; 1.1.0: 1 of 2 pods ready'),
          cond('Progressing', 'True', 'RollingOut', 'new pods are starting'),
          cond('Degraded', 'False', 'AsExpected'),
        ],
      }),
    );
    assert.equal(hs.status, 'Progressing');
    assert.equal(
      hs.message,
      'RollingOut: new pods are starting (version 1.0.0 serves; 1.1.0: 1 of 2 pods ready)',
    );
  });

  it('is Progressing for a first rollout with no pod ready yet', function () {
    const hs = health(
      fm(1, {
        observedGeneration: 1,
        conditions: [
          cond('Ready', 'False', 'WaitingForPods', '0 of 2 pods ready'),
          cond('Degraded', 'False', 'AsExpected'),
        ],
      }),
    );
    assert.deepEqual(hs, { status: 'Progressing', message: 'WaitingForPods: 0 of 2 pods ready' });
  });

  it('is Degraded when Degraded is True, with its reason and message, even while the old version serves', function () {
    const hs = health(
      fm(6, {
        observedGeneration: 6,
        phase: 'Degraded',
        conditions: [
          cond('Ready', 'False', 'PreviousVersionServing', 'version 1.0.0 still serves'),
          cond('Progressing', 'False', 'ModelDigestMismatch'),
          cond('Degraded', 'True', 'ModelDigestMismatch', 'sha256 of the file is 12ab, spec says 34cd'),
        ],
      }),
    );
    assert.deepEqual(hs, {
      status: 'Degraded',
      message: 'ModelDigestMismatch: sha256 of the file is 12ab, spec says 34cd',
    });
  });

  it('is Degraded when Ready is False for a failure reason without a Degraded condition', function () {
    const hs = health(
      fm(2, {
        observedGeneration: 2,
        conditions: [cond('Ready', 'False', 'ProgressDeadlineExceeded', 'no pod became ready')],
      }),
    );
    assert.equal(hs.status, 'Degraded');
  });

  it('is Suspended when scaled to zero on purpose', function () {
    const hs = health(
      fm(2, {
        observedGeneration: 2,
        conditions: [
          cond('Ready', 'True', 'ScaledToZero', 'replicas: 0'),
          cond('Degraded', 'False', 'AsExpected'),
        ],
      }),
    );
    assert.equal(hs.status, 'Suspended');
  });

  describe('with a canary (spec.canary)', function () {
    const canary = { canary: { model: { version: '1.2.0' }, trafficPercent: 10 } };

    it('is Healthy when the candidate serves, and says so', function () {
      const hs = health(
        fm(
          7,
          {
            observedGeneration: 7,
            conditions: [...healthy, cond('CanaryReady', 'True', 'CanaryServing', '1.2.0 on 1 pod, 10%')],
          },
          canary,
        ),
      );
      assert.equal(hs.status, 'Healthy');
      assert.match(hs.message, /canary CanaryServing: 1\.2\.0 on 1 pod, 10%/);
    });

    it('is Progressing while the candidate starts', function () {
      const hs = health(
        fm(
          7,
          {
            observedGeneration: 7,
            conditions: [...healthy, cond('CanaryReady', 'False', 'CanaryRollingOut', 'starting')],
          },
          canary,
        ),
      );
      assert.deepEqual(hs, { status: 'Progressing', message: 'Canary CanaryRollingOut: starting' });
    });

    it('is Degraded when the candidate failed, though the stable version is Ready', function () {
      const hs = health(
        fm(
          7,
          {
            observedGeneration: 7,
            conditions: [...healthy, cond('CanaryReady', 'False', 'CanaryFailed', 'deadline passed')],
          },
          canary,
        ),
      );
      assert.deepEqual(hs, { status: 'Degraded', message: 'Canary CanaryFailed: deadline passed' });
    });

    it('ignores a CanaryReady left from a canary that was removed from the spec', function () {
      const hs = health(
        fm(8, {
          observedGeneration: 8,
          conditions: [...healthy, cond('CanaryReady', 'False', 'CanaryFailed', 'old')],
        }),
      );
      assert.equal(hs.status, 'Healthy');
    });
  });
});
