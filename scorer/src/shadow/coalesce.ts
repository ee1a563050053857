// Coalescing copies of POST /score: several waiting copies of one form
// ("records" or "data") are sent to the candidate as one request whose records
// (or rows) are theirs, in order. The combined body is built from the raw
// bodies without parsing them again: the byte span of each body's list is
// located by a scan of the top-level object (strings skipped, brackets
// counted), and the spans joined.

/** The key of the list a coalescible body holds: its form. */
export type ListKey = 'records' | 'data';

/** The byte span inside a body's top-level list ("records" or "data"), brackets excluded. */
export interface RecordsSpan {
  readonly start: number;
  readonly end: number;
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

const KEYS: Record<ListKey, Buffer> = { records: Buffer.from('records'), data: Buffer.from('data') };

function skipSpace(body: Buffer, i: number): number {
  while (i < body.length) {
    const c = body[i];
    if (c !== SPACE && c !== TAB && c !== LF && c !== CR) break;
    i++;
  }
  return i;
}

/** From an opening quote, the index after the closing one; -1 when there is none. */
function skipString(body: Buffer, i: number): number {
  let q = body.indexOf(QUOTE, i + 1);
  while (q !== -1) {
    let backslashes = 0;
    while (body[q - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    q = body.indexOf(QUOTE, q + 1);
  }
  return -1;
}

/** From the first byte of a value, the index after it; -1 when it does not end. */
function skipValue(body: Buffer, i: number): number {
  const c = body[i];
  if (c === QUOTE) return skipString(body, i);
  if (c !== OPEN_ARRAY && c !== OPEN_OBJECT) {
    // A number or a literal: up to the next delimiter.
    while (i < body.length) {
      const b = body[i];
      if (
        b === COMMA ||
        b === CLOSE_OBJECT ||
        b === CLOSE_ARRAY ||
        b === SPACE ||
        b === TAB ||
        b === LF ||
        b === CR
      ) {
        break;
      }
      i++;
    }
    return i;
  }
  let depth = 0;
  while (i < body.length) {
    const b = body[i] as number;
    if (b === QUOTE) {
      i = skipString(body, i);
      if (i === -1) return -1;
      continue;
    }
    if (b === OPEN_ARRAY || b === OPEN_OBJECT) depth++;
    else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return -1;
}

/** Whether the key between `start` and `end` (quotes excluded) is `key`, escapes decoded. */
function isListKey(body: Buffer, start: number, end: number, key: ListKey): boolean {
  const name = KEYS[key];
  let escaped = false;
  for (let i = start; i < end && !escaped; i++) escaped = body[i] === BACKSLASH;
  if (!escaped) {
    return end - start === name.length && body.compare(name, 0, name.length, start, end) === 0;
  }
  try {
    return JSON.parse(body.toString('utf8', start - 1, end + 1)) === key;
  } catch {
    return false;
  }
}

/**
 * The span of the `key` array ("records" by default) in a body that
 * JSON.parse read as an object with that key (the last such key, as
 * JSON.parse keeps the last); undefined when the body is not laid out so
 * (then the copy is sent alone).
 */
export function recordsSpan(body: Buffer, key: ListKey = 'records'): RecordsSpan | undefined {
  let i = skipSpace(body, 0);
  if (body[i] !== OPEN_OBJECT) return undefined;
  i = skipSpace(body, i + 1);
  let span: RecordsSpan | undefined;
  if (body[i] === CLOSE_OBJECT) return undefined;
  for (;;) {
    if (body[i] !== QUOTE) return undefined;
    const keyEnd = skipString(body, i);
    if (keyEnd === -1) return undefined;
    const isRecords = isListKey(body, i + 1, keyEnd - 1, key);
    i = skipSpace(body, keyEnd);
    if (body[i] !== COLON) return undefined;
    i = skipSpace(body, i + 1);
    const valueStart = i;
    i = skipValue(body, i);
    if (i === -1) return undefined;
    if (isRecords) {
      span =
        body[valueStart] === OPEN_ARRAY && body[i - 1] === CLOSE_ARRAY
          ? { start: valueStart + 1, end: i - 1 }
          : undefined;
    }
    i = skipSpace(body, i);
    if (body[i] === COMMA) {
      i = skipSpace(body, i + 1);
      continue;
    }
    if (body[i] !== CLOSE_OBJECT) return undefined;
    return skipSpace(body, i + 1) === body.length ? span : undefined;
  }
}

const HEADS: Record<ListKey, Buffer> = {
  records: Buffer.from('{"records":['),
  data: Buffer.from('{"data":['),
};
const TAIL = Buffer.from(']}');
const COMMA_BYTES = Buffer.from(',');

/** The body of one POST /score whose records (rows, for "data") are those of `parts`, in order. */
export function combinedBody(
  parts: readonly { body: Buffer; span: RecordsSpan }[],
  key: ListKey = 'records',
): Buffer {
  const pieces: Buffer[] = [HEADS[key]];
  parts.forEach(({ body, span }, i) => {
    if (i > 0) pieces.push(COMMA_BYTES);
    pieces.push(body.subarray(span.start, span.end));
  });
  pieces.push(TAIL);
  return Buffer.concat(pieces);
}
