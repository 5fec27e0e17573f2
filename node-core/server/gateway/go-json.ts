// JSON read and written as Go's encoding/json does, for the gateway: etcd's
// grpc-gateway reads request bodies with a json.Decoder (one value at a
// time, the rest of the body left for the next request of a stream) and
// answers syntax errors with Go's texts ("unexpected EOF", "invalid
// character 'x' looking for beginning of value"), which clients see in the
// error body. Values keep their literal text, since jsonpb re-reads quoted
// numbers and Go's type errors quote the literal ("number 1.5").

/** A parsed JSON value; numbers and strings keep their source text. */
export type JsonValue =
  | { k: 'object'; fields: Map<string, JsonValue> }
  | { k: 'array'; items: JsonValue[] }
  | { k: 'string'; v: string; raw: Buffer }
  | { k: 'number'; raw: string }
  | { k: 'bool'; v: boolean }
  | { k: 'null' };

/** A syntax error with Go's text. `eof`: the input ended inside a value. */
export class GoJsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly eof: boolean,
  ) {
    super(message);
  }
}

/** Go's quoteChar: how a scanner error names the offending byte. */
export function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return `'"'`;
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 0x5c: '\\\\' };
  if (named[c]) return `'${named[c]}'`;
  if (c < 0x20 || c === 0x7f) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  // a byte ≥ 0x80 is Go's string(rune(c)): Latin-1, quoted when not printable
  if (c >= 0x80 && c <= 0xa0) return `'\\u00${c.toString(16)}'`;
  if (c === 0xad) return "'\\u00ad'";
  return `'${String.fromCharCode(c)}'`;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);

/** encoding/json's maxNestingDepth. */
const MAX_DEPTH = 10000;

class Parser {
  pos: number;
  private depth = 0;
  constructor(
    private readonly b: Buffer,
    start: number,
  ) {
    this.pos = start;
  }

  private fail(context: string): never {
    if (this.pos >= this.b.length) throw new GoJsonSyntaxError('unexpected EOF', true);
    throw new GoJsonSyntaxError(`invalid character ${quoteChar(this.b[this.pos])} ${context}`, false);
  }

  skipSpace(): void {
    while (this.pos < this.b.length && isSpace(this.b[this.pos])) this.pos++;
  }

  /** One value; iterative, so nesting is bounded by Go's depth limit, not by the JS stack. */
  value(): JsonValue {
    type Frame = { kind: 'object'; fields: Map<string, JsonValue>; key: string } | { kind: 'array'; items: JsonValue[] };
    const stack: Frame[] = [];
    for (;;) {
      this.skipSpace();
      const c = this.b[this.pos];
      let v: JsonValue;
      if (c === 0x7b) {
        this.enter();
        this.skipSpace();
        if (this.b[this.pos] === 0x7d) {
          this.leave();
          v = { k: 'object', fields: new Map() };
        } else {
          stack.push({ kind: 'object', fields: new Map(), key: this.key() });
          continue;
        }
      } else if (c === 0x5b) {
        this.enter();
        this.skipSpace();
        if (this.b[this.pos] === 0x5d) {
          this.leave();
          v = { k: 'array', items: [] };
        } else {
          stack.push({ kind: 'array', items: [] });
          continue;
        }
      } else if (c === 0x22) v = this.string();
      else if (c === 0x2d || isDigit(c)) v = this.number();
      else if (c === 0x74) v = this.literal('true', { k: 'bool', v: true });
      else if (c === 0x66) v = this.literal('false', { k: 'bool', v: false });
      else if (c === 0x6e) v = this.literal('null', { k: 'null' });
      else return this.fail('looking for beginning of value');
      // a complete value: into its container, closing containers that end here
      for (;;) {
        const top = stack[stack.length - 1];
        if (!top) return v;
        // a repeated key: the last one wins (Go's map[string]json.RawMessage)
        if (top.kind === 'object') top.fields.set(top.key, v);
        else top.items.push(v);
        this.skipSpace();
        const d = this.b[this.pos];
        if (d === 0x2c) {
          this.pos++;
          if (top.kind === 'object') top.key = this.key();
          break;
        }
        if (d === (top.kind === 'object' ? 0x7d : 0x5d)) {
          this.leave();
          stack.pop();
          v = top.kind === 'object' ? { k: 'object', fields: top.fields } : { k: 'array', items: top.items };
          continue;
        }
        this.fail(top.kind === 'object' ? 'after object key:value pair' : 'after array element');
      }
    }
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail('exceeded max depth');
    this.pos++;
  }

  private leave(): void {
    this.pos++;
    this.depth--;
  }

  /** An object key and its colon. */
  private key(): string {
    this.skipSpace();
    if (this.b[this.pos] !== 0x22) this.fail('looking for beginning of object key string');
    const key = this.string().v;
    this.skipSpace();
    if (this.b[this.pos] !== 0x3a) this.fail('after object key');
    this.pos++;
    return key;
  }

  private literal(word: string, v: JsonValue): JsonValue {
    this.pos++;
    for (let i = 1; i < word.length; i++) {
      if (this.b[this.pos] !== word.charCodeAt(i)) this.fail(`in literal ${word} (expecting '${word[i]}')`);
      this.pos++;
    }
    return v;
  }

  private string(): { k: 'string'; v: string; raw: Buffer } {
    const start = this.pos;
    this.pos++;
    for (;;) {
      if (this.pos >= this.b.length) this.fail('in string literal');
      const c = this.b[this.pos];
      if (c === 0x22) break;
      if (c < 0x20) this.fail('in string literal');
      if (c === 0x5c) {
        this.pos++;
        const e = this.b[this.pos];
        if (e === 0x75) {
          this.pos++;
          for (let i = 0; i < 4; i++) {
            if (!isHex(this.b[this.pos])) this.fail('in \\u hexadecimal character escape');
            this.pos++;
          }
          continue;
        }
        if (this.pos >= this.b.length || !'"\\/bfnrt'.includes(String.fromCharCode(e))) this.fail('in string escape code');
      }
      this.pos++;
    }
    this.pos++;
    const literal = this.b.subarray(start, this.pos);
    // valid JSON by now; invalid UTF-8 becomes U+FFFD, as Go's decoder does
    return { k: 'string', v: JSON.parse(literal.toString('utf8')) as string, raw: literal.subarray(1, literal.length - 1) };
  }

  private number(): JsonValue {
    const start = this.pos;
    if (this.b[this.pos] === 0x2d) {
      this.pos++;
      if (!isDigit(this.b[this.pos])) this.fail('in numeric literal');
    }
    if (this.b[this.pos] === 0x30) this.pos++;
    else while (isDigit(this.b[this.pos])) this.pos++;
    if (this.b[this.pos] === 0x2e) {
      this.pos++;
      if (!isDigit(this.b[this.pos])) this.fail('after decimal point in numeric literal');
      while (isDigit(this.b[this.pos])) this.pos++;
    }
    const e = this.b[this.pos];
    if (e === 0x65 || e === 0x45) {
      this.pos++;
      if (this.b[this.pos] === 0x2b || this.b[this.pos] === 0x2d) this.pos++;
      if (!isDigit(this.b[this.pos])) this.fail('in exponent of numeric literal');
      while (isDigit(this.b[this.pos])) this.pos++;
    }
    return { k: 'number', raw: this.b.toString('latin1', start, this.pos) };
  }
}

/**
 * json.Decoder.Decode: the next value of `buf` from `pos`. Returns undefined
 * at the end of input (io.EOF: only white space left), else the value and
 * where it ended. Throws GoJsonSyntaxError (`eof` when the input ended
 * inside the value: more data may complete it).
 */
export function decodeNext(buf: Buffer, pos: number): { value: JsonValue; end: number } | undefined {
  const p = new Parser(buf, pos);
  p.skipSpace();
  if (p.pos >= buf.length) return undefined;
  const value = p.value();
  return { value, end: p.pos };
}

/** json.Unmarshal: the whole input is one value ("unexpected end of JSON input" when cut short). */
export function unmarshal(buf: Buffer): JsonValue {
  const p = new Parser(buf, 0);
  let value: JsonValue;
  try {
    value = p.value();
  } catch (e) {
    if (e instanceof GoJsonSyntaxError && e.eof) throw new GoJsonSyntaxError('unexpected end of JSON input', true);
    throw e;
  }
  p.skipSpace();
  if (p.pos < buf.length) throw new GoJsonSyntaxError(`invalid character ${quoteChar(buf[p.pos])} after top-level value`, false);
  return value;
}

/** A string as Go's encoding/json writes it (HTML-safe escapes, U+2028/2029 escaped). */
export function goQuote(s: string): string {
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      if (c === 0x22) esc = '\\"';
      else if (c === 0x5c) esc = '\\\\';
      else if (c === 0x0a) esc = '\\n';
      else if (c === 0x0d) esc = '\\r';
      else if (c === 0x09) esc = '\\t';
      else esc = '\\u' + c.toString(16).padStart(4, '0');
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // a lone surrogate is invalid UTF-8 in Go's view: U+FFFD
      const pair = c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
      if (pair) {
        i++;
        continue;
      }
      esc = '\ufffd';
    }
    if (esc !== undefined) {
      out += s.slice(from, i) + esc;
      from = i + 1;
    }
  }
  return out + s.slice(from) + '"';
}
