// Reading a JSON request body with bounds: its size, its nesting and the number
// of arrays and objects it holds are checked while the bytes arrive, before
// JSON.parse builds anything. A body that will not be used is read and thrown
// away up to a bound, so the answer reaches a client that is still sending, and
// never without bound.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HttpError } from './http-errors';

export interface JsonShapeLimits {
  /** Deepest nesting of arrays and objects. */
  readonly maxDepth: number;
  /** Arrays and objects in the whole body. */
  readonly maxContainers: number;
  /** Said in the message when maxContainers is crossed: how to stay under it. */
  readonly containersHint: string;
}

export interface BodyOptions {
  readonly maxBytes: number;
  /** Structure limits; undefined when the overload guard is off. */
  readonly shape: JsonShapeLimits | undefined;
  /**
   * The request's admission: told about every chunk (an error refuses the rest
   * of the body, the memory budget is spent); `expired` once answered 408.
   */
  readonly budget: { take(bytes: number): HttpError | undefined; readonly expired: boolean } | undefined;
  /** Given the raw bytes of a body that arrived in full (shadow mirroring keeps them). */
  readonly keep?: ((body: Buffer) => void) | undefined;
}

/** A body refused for its nesting or its number of arrays and objects. */
export class JsonLimitError extends HttpError {
  override name = 'JsonLimitError';
}

// Byte classes outside strings: 1 quote, 2 opening bracket, 3 closing bracket.
const CLASS = new Uint8Array(256);
CLASS[0x22] = 1;
CLASS[0x5b] = 2;
CLASS[0x7b] = 2;
CLASS[0x5d] = 3;
CLASS[0x7d] = 3;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Follows the nesting of JSON text chunk by chunk, without parsing it: strings
 * are skipped (escapes respected), brackets counted. Text that is not JSON is
 * left for JSON.parse to refuse.
 */
export class JsonShapeCheck {
  private depth = 0;
  private containers = 0;
  private inString = false;
  /** The first byte of the next chunk is escaped (a chunk ended in an odd run of backslashes). */
  private escaped = false;

  constructor(private readonly limits: JsonShapeLimits) {}

  /** Reads one chunk; returns the error to answer when a limit is crossed. */
  feed(chunk: Uint8Array): HttpError | undefined {
    const { maxDepth, maxContainers } = this.limits;
    let depth = this.depth;
    let containers = this.containers;
    let inString = this.inString;
    const n = chunk.length;
    let i = 0;
    if (inString && this.escaped) i = 1;
    this.escaped = false;
    while (i < n) {
      if (inString) {
        // The closing quote is the next one preceded by an even run of backslashes.
        let q = chunk.indexOf(QUOTE, i);
        while (q !== -1 && backslashesBefore(chunk, q, i) % 2 === 1) q = chunk.indexOf(QUOTE, q + 1);
        if (q === -1) {
          this.escaped = backslashesBefore(chunk, n, i) % 2 === 1;
          break;
        }
        inString = false;
        i = q + 1;
        continue;
      }
      for (; i < n; i++) {
        const k = CLASS[chunk[i] as number];
        if (k === 0) continue;
        if (k === 1) {
          inString = true;
          i++;
          break;
        }
        if (k === 2) {
          if (++depth > maxDepth) {
            return new JsonLimitError(
              400,
              `the JSON body is nested deeper than ${maxDepth} levels; a scoring request needs at most 5`,
            );
          }
          if (++containers > maxContainers) {
            return new JsonLimitError(
              413,
              `the JSON body holds more than ${maxContainers} arrays and objects; ${this.limits.containersHint}`,
            );
          }
        } else if (depth > 0) {
          depth--;
        }
      }
    }
    this.depth = depth;
    this.containers = containers;
    this.inString = inString;
    return undefined;
  }
}

/** Length of the run of backslashes that ends just before `end`, not looking before `start`. */
function backslashesBefore(chunk: Uint8Array, end: number, start: number): number {
  let k = end - 1;
  while (k >= start && chunk[k] === BACKSLASH) k--;
  return end - 1 - k;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
/** Bodies from this size on are parsed one per turn of the event loop. */
const LARGE_BODY = 64 * 1024;
/** How long a refused body may keep arriving, and a closed connection linger, before it is cut. */
const DISCARD_MS = 5000;

/**
 * The request bodies of one scorer: reading them within bounds, parsing large
 * ones one per turn of the event loop, and throwing refused ones away.
 */
export class RequestBodies {
  private turns: Promise<void> = Promise.resolve();
  private readonly discarding = new WeakSet<IncomingMessage>();

  /** @param discardBytes how much of a refused body is read and thrown away */
  constructor(private readonly discardBytes: number) {}

  /**
   * Reads and parses a JSON body within `options`. On a refusal the rest of the
   * body is discarded (the caller answers). Parse errors name the position,
   * never the content: bodies hold personal data.
   */
  read(req: IncomingMessage, res: ServerResponse, options: BodyOptions): Promise<unknown> {
    const type = req.headers['content-type'];
    if (type === undefined || !JSON_TYPE.test(type)) {
      return this.refuse(
        req,
        res,
        new HttpError(
          415,
          `the body must be JSON: send Content-Type: application/json (got ${describeType(type)})`,
        ),
      );
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      return this.refuse(
        req,
        res,
        new HttpError(
          415,
          'a compressed body (Content-Encoding) is not supported; send the body uncompressed',
        ),
      );
    }
    const { maxBytes, budget } = options;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > maxBytes) return this.refuse(req, res, tooLarge(maxBytes));
    if (declared > 0 && budget) {
      const refused = budget.take(declared);
      if (refused) return this.refuse(req, res, refused);
    }
    const counted = declared > 0 ? declared : 0;
    const shape = options.shape ? new JsonShapeCheck(options.shape) : undefined;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let total = 0;
      let done = false;
      const fail = (error: HttpError) => {
        if (done) return;
        done = true;
        chunks.length = 0;
        req.off('data', onData);
        this.discardRest(req, res, total);
        reject(error);
      };
      const onData = (chunk: Buffer) => {
        if (done) return;
        if (budget?.expired) {
          // Answered already (408); stop keeping what still arrives.
          fail(new HttpError(408, 'the request body did not arrive in time'));
          return;
        }
        total += chunk.length;
        if (total > maxBytes) {
          fail(tooLarge(maxBytes));
          return;
        }
        if (total > counted && budget) {
          const refused = budget.take(Math.min(chunk.length, total - counted));
          if (refused) {
            fail(refused);
            return;
          }
        }
        const problem = shape?.feed(chunk);
        if (problem) {
          fail(problem);
          return;
        }
        chunks.push(chunk);
      };
      req.on('data', onData);
      req.on('error', () => fail(new HttpError(400, 'the request body could not be read')));
      req.on('aborted', () => fail(new HttpError(400, 'the client aborted the request')));
      req.on('end', () => {
        if (done) return;
        done = true;
        if (total === 0) {
          reject(new HttpError(400, 'the body is empty; send a JSON object'));
          return;
        }
        if (total < LARGE_BODY) parse(chunks, options.keep, resolve, reject);
        else this.inTurn(() => parse(chunks, options.keep, resolve, reject));
      });
    });
  }

  /** Refuses a body before reading it: the rest is discarded, the caller answers `error`. */
  private refuse(req: IncomingMessage, res: ServerResponse, error: HttpError): Promise<never> {
    this.discardRest(req, res);
    return Promise.reject(error);
  }

  /**
   * Reads and throws away the rest of a body that will not be used, so that
   * the answer reaches a client that is still sending: up to twice
   * `discardBytes` of the body in all, what was read before the refusal
   * included (so a body refused by its Content-Length before any of it was
   * read gets as far as one refused past the limit), and at least
   * `discardBytes` past the refusal:
   * a socket closed with unread data is reset, and the client may lose the
   * answer. Call it before answering. When the rest (from Content-Length) fits
   * the bound the connection stays usable; otherwise (or when the connection
   * closes after this answer anyway) the answer carries `Connection: close` and
   * is followed by FIN, not by a close that would reset the client. Past the
   * read bound the scorer stops reading (the client's sends stall; its answer is
   * already there), and after DISCARD_MS it closes the connection: no client
   * can make it read without end. `received`: bytes of the body read already.
   */
  discardRest(req: IncomingMessage, res: ServerResponse, received = 0): void {
    if (req.complete || req.destroyed || this.discarding.has(req)) return;
    this.discarding.add(req);
    const maxBytes = this.discardBytes;
    const socket = req.socket;
    const declared = Number(req.headers['content-length'] ?? NaN);
    // The connection closes after the answer when the rest is too large to
    // read, or when it would close anyway (the client asked, or draining).
    const closing =
      !(declared - received <= maxBytes) || !res.shouldKeepAlive || res.getHeader('connection') === 'close';
    if (closing && !res.headersSent) {
      res.setHeader('connection', 'close');
      lingerOnClose(socket);
    }
    const readBound = 2 * maxBytes - Math.min(received, maxBytes);
    let seen = 0;
    const timer = setTimeout(() => socket.destroy(), DISCARD_MS);
    timer.unref();
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > readBound) {
        req.off('data', onData);
        req.pause();
      }
    };
    req.on('data', onData);
    req.once('end', () => clearTimeout(timer));
    req.once('close', () => clearTimeout(timer));
    req.resume();
  }

  /**
   * Runs `work` in a turn of the event loop of its own, after the work queued
   * before it. Large bodies that arrive together would otherwise be parsed (and
   * validated, in the same turn) back to back, and /healthz would wait for all
   * of them; this way it waits for one at most.
   */
  private inTurn(work: () => void): void {
    this.turns = this.turns.then(
      () =>
        new Promise<void>((next) =>
          setImmediate(() => {
            work();
            // The caller's continuation (validation) runs in this turn's microtasks.
            setImmediate(next);
          }),
        ),
    );
  }
}

/** Parses the chunks of a body that arrived in full (and empties the list). */
function parse(
  chunks: Buffer[],
  keep: BodyOptions['keep'],
  resolve: (body: unknown) => void,
  reject: (error: HttpError) => void,
): void {
  const single = chunks.length === 1;
  const bytes = single ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  chunks.length = 0;
  // A single chunk is a view of the socket's read buffer: a kept body gets its own bytes.
  keep?.(single ? Buffer.from(bytes) : bytes);
  const text = bytes.toString('utf8');
  try {
    resolve(JSON.parse(text));
  } catch (error) {
    reject(new HttpError(400, `the body is not valid JSON${where(error)}; check its syntax`));
  }
}

/** Where JSON.parse stopped, from its message; the message itself may quote the body. */
function where(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const position = /at position (\d+)/.exec(message);
  if (position) return ` (at character ${position[1]})`;
  if (/end of (?:JSON|data)/i.test(message)) return ' (it ends too early)';
  return '';
}

function describeType(type: string | undefined): string {
  if (type === undefined) return 'none';
  return type.length > 100 ? `${type.slice(0, 100)}...` : type;
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    `the body is over the limit of ${maxBytes} bytes; split the batch into smaller requests`,
  );
}

/**
 * After an answer with Connection: close, node ends the socket and destroys it
 * as soon as the answer is written, resetting a client that is still sending.
 * Instead: send FIN, keep reading (discardRest bounds it), and close when the
 * client closes its side or after DISCARD_MS.
 */
function lingerOnClose(socket: Socket): void {
  const lingering = socket as Socket & { destroySoon?: () => void };
  lingering.destroySoon = () => {
    if (!socket.writableEnded) socket.end();
    setTimeout(() => socket.destroy(), DISCARD_MS).unref();
  };
}
