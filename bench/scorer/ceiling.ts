// The ceiling for any Node service on this machine: a bare node:http server that
// reads a POST body, parses it with JSON.parse and answers a constant per row
// count ({"result": [0, ...]}, one number per row, so the answer is as long as a
// real one). No validation, no model, no metrics. bench.ts runs it as it runs
// the scorer (one Node process, compiled JavaScript run by node): PORT, HOST.

import { createServer } from 'node:http';

const answers = new Map<number, Buffer>();
const answer = (rows: number): Buffer => {
  let cached = answers.get(rows);
  if (cached === undefined) {
    cached = Buffer.from(JSON.stringify({ result: new Array<number>(rows).fill(0) }));
    if (answers.size < 16) answers.set(rows, cached);
  }
  return cached;
};

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"alive"}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let rows = 0;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown };
      rows = Array.isArray(body.data) ? body.data.length : 0;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"not JSON"}');
      return;
    }
    const text = answer(rows);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': text.length }).end(text);
  });
});
server.listen(Number(process.env.PORT ?? 8090), process.env.HOST ?? '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
