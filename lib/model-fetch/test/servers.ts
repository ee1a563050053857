// Real HTTP and HTTPS servers on loopback for the model fetcher's tests: each
// path answers through its own handler, and every request is counted.
import { mkdtempSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfSignedCert } from '../../../test/support/tls';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

export class TestServer {
  private server: http.Server | undefined;
  private readonly routes = new Map<string, Handler>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Path and query of every request, in order. */
  readonly requests: string[] = [];
  /** PEM of the self-signed certificate (https only), valid for 127.0.0.1 and localhost. */
  ca = '';
  /** The same PEM as a file. */
  caFile = '';

  constructor(private readonly tls = false) {}

  async start(): Promise<this> {
    const listener: http.RequestListener = (req, res) => {
      this.requests.push(req.url ?? '');
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      const handler = this.routes.get(pathname);
      const hit = this.requests.filter((r) => r.split('?')[0] === pathname).length;
      if (handler) handler(req, res, hit);
      else res.writeHead(404).end('no such file');
    };
    if (this.tls) {
      const dir = mkdtempSync(path.join(tmpdir(), 'model-fetch-tls-'));
      const cert = selfSignedCert(dir, '127.0.0.1', 'IP:127.0.0.1,DNS:localhost');
      this.ca = cert.cert;
      this.caFile = cert.certFile;
      this.server = https.createServer({ key: cert.key, cert: cert.cert }, listener);
    } else {
      this.server = http.createServer(listener);
    }
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  url(pathname: string, host = '127.0.0.1'): string {
    return `${this.tls ? 'https' : 'http'}://${host}:${this.port}${pathname}`;
  }

  route(pathname: string, handler: Handler): string {
    this.routes.set(pathname, handler);
    return this.url(pathname);
  }

  /** Serves `body` at `pathname` with its Content-Length. */
  file(pathname: string, body: Buffer): string {
    return this.route(pathname, (_req, res) =>
      res.writeHead(200, { 'content-length': body.length }).end(body),
    );
  }

  /** Announces `length` bytes and sends one byte every `everyMs`, for ever. */
  trickle(pathname: string, length: number, everyMs: number): string {
    return this.route(pathname, (_req, res) => {
      res.writeHead(200, { 'content-length': length });
      const timer = setInterval(() => {
        if (res.destroyed || res.writableEnded) {
          clearInterval(timer);
          this.timers.delete(timer);
          return;
        }
        res.write('x');
      }, everyMs);
      this.timers.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        this.timers.delete(timer);
      });
    });
  }

  /** Answers `status` with a Location header (or none when undefined). */
  redirect(pathname: string, location: string | undefined, status = 302): string {
    return this.route(pathname, (_req, res) => {
      res.writeHead(status, location === undefined ? {} : { location }).end();
    });
  }

  hits(pathname: string): number {
    return this.requests.filter((r) => r.split('?')[0] === pathname).length;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
