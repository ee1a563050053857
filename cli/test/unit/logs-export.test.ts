import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/fnolctl';
import { logsMain, toCsv, WindowFilter } from '../../src/logs-export';

const line = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    schema: 1,
    time: '2026-12-01T10:00:00.000Z',
    requestId: 'r1',
    model: { name: 'fnol', version: '1.0.0', sha256: null },
    route: '/score',
    form: 'records',
    latencyMs: 1,
    redacted: {},
    part: { index: 0, count: 1 },
    features: ['a', 'note', 'c'],
    outputs: ['y', 'p'],
    inputs: [[1, 'says "hi", then\nleaves', null]],
    predictions: [[2, [0.1, 0.9]]],
    ...over,
  });

describe('fnolctl logs export', () => {
  const dir = mkdtempSync(join(tmpdir(), 'logs-export-'));

  it('writes one row per record: features, predictions (arrays spread), then identity; quoted per RFC 4180', () => {
    const filter = new WindowFilter({
      since: undefined,
      until: undefined,
      model: undefined,
      version: undefined,
    });
    filter.add(line());
    assert.equal(
      toCsv(filter.kept),
      'a,note,c,y,p_0,p_1,model_version,model_sha256,request_id,time\n' +
        '1,"says ""hi"", then\nleaves",,2,0.1,0.9,1.0.0,,r1,2026-12-01T10:00:00.000Z\n',
    );
  });

  it('keeps the window [since, until) and skips lines that are not payload records, counting them', async () => {
    const file = join(dir, 'collected.log');
    writeFileSync(
      file,
      [
        '{"level":30,"msg":"listening"}',
        'not json',
        line({ requestId: 'early', time: '2026-12-01T09:59:59.999Z' }),
        line({ requestId: 'in' }),
        line({ requestId: 'late', time: '2026-12-01T11:00:00.000Z' }),
      ].join('\n'),
    );
    const out = join(dir, 'out.csv');
    const messages: string[] = [];
    const code = await logsMain(
      [
        'export',
        '--from',
        file,
        '--since',
        '2026-12-01T10:00:00Z',
        '--until',
        '2026-12-01T11:00:00Z',
        '--out',
        out,
      ],
      (m) => messages.push(m),
    );
    assert.equal(code, 0);
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(rows.length, 3); // header and a two-line record
    assert.ok(readFileSync(out, 'utf8').includes(',in,'));
    assert.match(
      messages.join('\n'),
      /wrote 1 records of 1 requests.*2 lines that are not payload-log records skipped/,
    );
  });

  it('runs as fnolctl logs export, with --model-version keeping one version', async () => {
    const file = join(dir, 'versions.jsonl');
    writeFileSync(
      file,
      [
        line({ requestId: 'old' }),
        line({ requestId: 'new', model: { name: 'fnol', version: '1.1.0', sha256: null } }),
      ].join('\n'),
    );
    const out = join(dir, 'versions.csv');
    const code = await main(
      ['logs', 'export', '--from', file, '--model-version', '1.1.0', '--out', out],
      () => {},
    );
    assert.equal(code, 0);
    const csv = readFileSync(out, 'utf8');
    assert.ok(csv.includes(',new,') && !csv.includes(',old,'), csv);
    assert.equal(await main(['logs', 'import', '--from', file, '--out', out], () => {}), 2);
  });

  it('refuses a window of several models unless one is chosen, and bad usage with exit code 2', async () => {
    const file = join(dir, 'two.jsonl');
    writeFileSync(file, [line(), line({ model: { name: 'other', version: '1', sha256: null } })].join('\n'));
    assert.equal(await logsMain(['export', '--from', file, '--out', join(dir, 'x.csv')], () => {}), 1);
    assert.equal(
      await logsMain(['export', '--from', file, '--model', 'fnol', '--out', join(dir, 'x.csv')], () => {}),
      0,
    );
    assert.equal(await logsMain(['export', '--from', file], () => {}), 2);
    assert.equal(
      await logsMain(['export', '--from', file, '--since', 'yesterday', '--out', 'x'], () => {}),
      2,
    );
    assert.equal(
      await logsMain(['export', '--from', 'https://a.blob.core.windows.net/c?sig=x', '--out', 'x'], () => {}),
      2,
    );
  });
});
