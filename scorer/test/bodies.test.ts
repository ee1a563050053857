// Request bodies: never in logs or answers, read within bounds when refused (a
// 413 reaches a client that is still sending, an unauthenticated client cannot
// make the scorer read without end), and probes that say "not ready" are not
// server errors.

import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { SMOKE_ROWS, call, fixtureModel, fnolModel, startInProcess, type InProcessScorer } from './support';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A pino logger at trace level whose lines are kept in `lines`. */
function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'trace' }, sink), lines };
}

interface Sent {
  /** The status line and the rest of what the scorer answered. */
  answer: string;
  written: number;
  /** How it ended: the error code, 'closed' or 'stopped' (the test's own cap). */
  end: string;
}

/** Opens a raw connection and sends the head of a POST (Content-Length or chunked). */
function openPost(port: number, path: string, declared: number | undefined, headers: Record<string, string>) {
  const socket = connect(port, '127.0.0.1');
  const lines = [
    `POST ${path} HTTP/1.1`,
    'Host: scorer',
    'Content-Type: application/json',
    declared === undefined ? 'Transfer-Encoding: chunked' : `Content-Length: ${declared}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  const piece = Buffer.alloc(64 * KiB, 0x20); // spaces: JSON whitespace
  const frame =
    declared === undefined ? Buffer.concat([Buffer.from('10000\r\n'), piece, Buffer.from('\r\n')]) : piece;
  return { socket, frame, size: piece.length };
}

/**
 * A hostile client: keeps sending until the scorer closes the connection (or
 * `cap` bytes), reading whatever comes back meanwhile.
 */
function sendWithoutEnd(
  port: number,
  path: string,
  headers: Record<string, string>,
  cap = 256 * MiB,
): Promise<Sent> {
  return new Promise((resolve) => {
    const { socket, frame, size } = openPost(port, path, undefined, headers);
    const sent: Sent = { answer: '', written: 0, end: '' };
    const finish = (end: string) => {
      if (sent.end !== '') return;
      sent.end = end;
      socket.destroy();
      resolve(sent);
    };
    const pump = () => {
      while (sent.end === '' && sent.written < cap) {
        sent.written += size;
        if (!socket.write(frame)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (sent.written >= cap) finish('stopped');
    };
    socket.on('data', (d: Buffer) => (sent.answer += d.toString('latin1')));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'error'));
    socket.on('close', () => finish('closed'));
    pump();
  });
}

/**
 * A client as many HTTP libraries are: it writes the whole body, and only then
 * reads the answer. A write that fails (the scorer reset the connection) means
 * it never sees the answer.
 */
function writeThenRead(
  port: number,
  total: number,
  chunked: boolean,
  headers: Record<string, string>,
): Promise<Sent> {
  return new Promise((resolve) => {
    const { socket, frame, size } = openPost(port, '/score', chunked ? undefined : total, headers);
    socket.pause();
    const sent: Sent = { answer: '', written: 0, end: '' };
    const finish = (end: string) => {
      if (sent.end !== '') return;
      sent.end = end;
      socket.destroy();
      resolve(sent);
    };
    const pump = () => {
      while (sent.written < total) {
        sent.written += size;
        if (!socket.write(frame)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (chunked) socket.write('0\r\n\r\n');
      socket.resume(); // all written: now read
    };
    socket.on('data', (d: Buffer) => {
      sent.answer += d.toString('latin1');
      if (/\r\n\r\n\{.*\}/s.test(sent.answer)) finish('answered');
    });
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'error'));
    socket.on('close', () => finish('closed'));
    pump();
  });
}

describe('request bodies', function () {
  this.timeout(60_000);

  describe('never in logs or answers', function () {
    it('a malformed body with a policy number: the number is in no log line and not in the answer', async () => {
      const { logger, lines } = capturingLogger();
      const scorer = await startInProcess(fnolModel(), { logger });
      try {
        const marker = 'POL-7731-0042-SECRET';
        const bodies = [
          `{"data": [[1, 2, "${marker}" 3]]}`,
          `{"data": [["${marker}"`,
          `{"policy": ${marker}}`,
          `${marker}`,
          `{"records": [{"Main_driver": "${marker}", }]}`,
        ];
        for (const path of ['/score', '/v2/models/fnol/infer']) {
          for (const raw of bodies) {
            const reply = await call(scorer.url, path, { raw });
            assert.equal(reply.status, 400, reply.text);
            assert.match(reply.text, /not valid JSON/);
            assert.doesNotMatch(reply.text, /POL-7731/, `answer to ${raw}: ${reply.text}`);
          }
        }
        assert.ok(lines.length > 0);
        const leaked = lines.filter((l) => l.includes('POL-7731'));
        assert.deepEqual(leaked, []);
      } finally {
        await scorer.close();
      }
    });
  });

  describe('read within bounds when refused', function () {
    let scorer: InProcessScorer;
    let port: number;
    before(async () => {
      scorer = await startInProcess(fnolModel(), {
        limits: { maxBodyBytes: 4 * MiB },
        apiKeys: ['k-bodies-1'],
      });
      port = Number(new URL(scorer.url).port);
    });
    after(() => scorer?.close());
    const key = { 'x-api-key': 'k-bodies-1' };

    for (const chunked of [false, true]) {
      it(`a 413 reaches a client that writes a 7 MiB body before reading (${chunked ? 'chunked' : 'Content-Length'})`, async () => {
        // More than the kernel's socket buffers hold: the scorer must read and
        // discard the rest of the body, or the client's writes fail.
        const sent = await writeThenRead(port, 7 * MiB, chunked, key);
        assert.match(
          sent.answer,
          /^HTTP\/1.1 413 /,
          `${sent.end} after ${sent.written} bytes: ${sent.answer}`,
        );
        assert.match(sent.answer, /over the limit of 4194304 bytes/);
        assert.match(sent.answer, /\r\nconnection: close\r\n/i);
        const ok = await call(scorer.url, '/score', { body: { data: [SMOKE_ROWS[0]] }, headers: key });
        assert.equal(ok.status, 200);
      });
    }

    it('a 413 reaches a client that writes a body refused by its Content-Length, almost twice the limit, before reading', async () => {
      // Refused before any of it is read, the body is still read as far as one
      // refused past the limit: twice MAX_BODY_BYTES. With 16 MiB, the 15 MiB a
      // read stopped at the limit would leave is more than loopback's socket
      // buffers take in, so the client's writes would stall and its 413 be lost.
      const big = await startInProcess(fnolModel(), {
        limits: { maxBodyBytes: 16 * MiB },
        apiKeys: ['k-bodies-1'],
      });
      try {
        const sent = await writeThenRead(Number(new URL(big.url).port), 31 * MiB, false, key);
        assert.match(
          sent.answer,
          /^HTTP\/1.1 413 /,
          `${sent.end} after ${sent.written} bytes: ${sent.answer}`,
        );
        assert.match(sent.answer, /over the limit of 16777216 bytes/);
      } finally {
        await big.close();
      }
    });

    it('a 413 reaches a client that keeps sending, which is then cut off', async () => {
      const sent = await sendWithoutEnd(port, '/score', key);
      assert.match(sent.answer, /^HTTP\/1.1 413 /, `${sent.end}: ${sent.answer}`);
      assert.notEqual(sent.end, 'stopped', `the scorer read all of ${sent.written} bytes`);
      assert.ok(sent.written < 32 * MiB, `${(sent.written / MiB).toFixed(1)} MiB sent before the cut`);
    });

    for (const path of ['/score', '/v2/models/fnol/infer']) {
      it(`an unauthenticated client streaming without end to ${path} gets 401 and is cut off`, async () => {
        const sent = await sendWithoutEnd(port, path, {});
        assert.match(sent.answer, /^HTTP\/1.1 401 /, `${sent.end}: ${sent.answer}`);
        assert.notEqual(sent.end, 'stopped', `the scorer read all of ${sent.written} bytes`);
        assert.ok(
          sent.written < 32 * MiB,
          `the scorer read ${(sent.written / MiB).toFixed(1)} MiB of an unauthenticated body`,
        );
      });
    }

    it('a refused request whose small body fits the bound leaves its connection usable', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const answers: number[] = [];
        for (const headers of [{}, key, {}, key]) {
          answers.push(
            await new Promise<number>((resolve, reject) => {
              const req = httpRequest(
                `${scorer.url}/score`,
                { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } },
                (res) => {
                  res.resume();
                  res.on('end', () => resolve(res.statusCode ?? 0));
                },
              );
              req.on('error', reject);
              req.end(JSON.stringify({ data: [SMOKE_ROWS[0]] }));
            }),
          );
        }
        assert.deepEqual(answers, [401, 200, 401, 200]);
      } finally {
        agent.destroy();
      }
    });
  });

  describe('probes that say not ready', function () {
    it('are neither logged as errors nor counted as server errors, while loading and while draining', async () => {
      const { logger, lines } = capturingLogger();
      const scorer = await startInProcess(fixtureModel('generic'), { logger, noModel: true });
      try {
        assert.equal((await call(scorer.url, '/readyz')).status, 503);
        assert.equal((await call(scorer.url, '/v2/health/ready')).status, 503);
        scorer.state.startDraining(0);
        assert.equal((await call(scorer.url, '/readyz')).status, 503);
        const metrics = await scorer.metrics.registry.metrics();
        assert.doesNotMatch(metrics, /scorer_http_requests_total\{[^}]*status="5\d\d"/);
        const levels = lines.map((l) => (JSON.parse(l) as { level: number }).level);
        assert.ok(
          levels.every((level) => level < 40),
          `warnings or errors logged: ${lines.filter((l) => /"level":[45]0/.test(l)).join('\n')}`,
        );
      } finally {
        await scorer.close();
      }
    });
  });
});
