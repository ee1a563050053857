// Reads ModelProto.metadata_props from the bytes of an ONNX file. onnxruntime-node
// exposes the input/output signature but not the custom metadata, and the scorer
// needs only this one repeated field, so a few lines of protobuf wire-format
// reading replace a protobuf dependency.

const METADATA_PROPS_FIELD = 14; // ModelProto.metadata_props (StringStringEntryProto)
const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export class OnnxFormatError extends Error {
  override name = 'OnnxFormatError';
}

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new OnnxFormatError('truncated varint');
      const byte = this.bytes[this.pos++] as number;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new OnnxFormatError('varint longer than 10 bytes');
  }

  /** Returns [fieldNumber, wireType, start, end] of the value; advances past it. */
  field(): [number, number, number, number] {
    const tag = this.varint();
    const fieldNumber = Math.floor(tag / 8);
    const wire = tag % 8;
    const start = this.pos;
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        break;
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_I32:
        this.pos += 4;
        break;
      case WIRE_LEN: {
        const length = this.varint();
        this.pos += length;
        return this.check([fieldNumber, wire, this.pos - length, this.pos]);
      }
      default:
        throw new OnnxFormatError(`unsupported protobuf wire type ${wire}`);
    }
    return this.check([fieldNumber, wire, start, this.pos]);
  }

  private check(result: [number, number, number, number]): [number, number, number, number] {
    if (this.pos > this.end) throw new OnnxFormatError('truncated field');
    return result;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function readMetadataProps(bytes: Uint8Array): Map<string, string> {
  const props = new Map<string, string>();
  const model = new Reader(bytes, 0, bytes.length);
  while (model.pos < model.end) {
    const [fieldNumber, wire, start, end] = model.field();
    if (fieldNumber !== METADATA_PROPS_FIELD || wire !== WIRE_LEN) continue;
    const entry = new Reader(bytes, start, end);
    let key = '';
    let value = '';
    while (entry.pos < entry.end) {
      const [f, w, s, e] = entry.field();
      if (w !== WIRE_LEN) continue;
      if (f === 1) key = utf8.decode(bytes.subarray(s, e));
      else if (f === 2) value = utf8.decode(bytes.subarray(s, e));
    }
    props.set(key, value);
  }
  return props;
}
