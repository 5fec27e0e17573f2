#!/usr/bin/env node
// Generates TypeScript codecs and grpc-js service definitions from the
// project's .proto files (node-core/proto/**.proto) into node-core/proto/gen.
//
// Why our own generator: etcd's 64-bit ids must be exact (bigint) while
// revisions and counts are far more convenient as numbers; fields marked
// `// @bigint` in the .proto become bigint, every other 64-bit field a number.
// Decoded messages always carry proto3 defaults; encoders take `XInit`
// shapes in which every field is optional.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = path.join(root, 'node-core/proto');
const outDir = path.join(protoDir, 'gen');

function listProtos(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'gen') out.push(...listProtos(p));
    else if (e.name.endsWith('.proto')) out.push(p);
  }
  return out.sort();
}

// ---------- parsing ----------
function tokenize(src) {
  const lines = src.split('\n');
  const toks = [];
  for (const line of lines) {
    const bigint = /\/\/.*@bigint/.test(line);
    // `// @goname X`: etcd's (gogoproto.customname), the Go name its errors use for the field
    const goname = /\/\/.*@goname\s+(\w+)/.exec(line)?.[1];
    const code = line.replace(/\/\/.*$/, '');
    const re = /"[^"]*"|[A-Za-z_][\w.]*|-?\d+|[{}()\[\];=<>,]/g;
    let m;
    while ((m = re.exec(code))) toks.push({ t: m[0], bigint, goname });
  }
  return toks;
}

function parseFile(file) {
  const toks = tokenize(fs.readFileSync(file, 'utf8'));
  let i = 0;
  const peek = () => toks[i]?.t;
  const next = () => toks[i++];
  const expect = (t) => {
    const x = next();
    if (!x || x.t !== t) throw new Error(`${file}: expected ${t} got ${x?.t}`);
  };
  const fileInfo = { pkg: '', messages: [], enums: [], services: [], imports: [] };

  function parseEnum(scope) {
    const name = next().t;
    expect('{');
    const values = [];
    while (peek() !== '}') {
      const vname = next().t;
      if (vname === 'option' || vname === 'reserved') {
        while (next().t !== ';');
        continue;
      }
      expect('=');
      const num = Number(next().t);
      if (peek() === '[') while (next().t !== ']');
      expect(';');
      values.push({ name: vname, num });
    }
    expect('}');
    if (peek() === ';') next();
    return { name, full: [...scope, name].join('.'), values };
  }

  function parseField(first, oneof) {
    let label = '';
    let type = first.t;
    if (type === 'repeated' || type === 'optional' || type === 'required') {
      label = type;
      type = next().t;
    }
    const nameTok = next();
    expect('=');
    const numTok = next();
    if (peek() === '[') while (next().t !== ']');
    expect(';');
    return {
      name: nameTok.t,
      num: Number(numTok.t),
      type,
      repeated: label === 'repeated',
      oneof,
      bigint: numTok.bigint || nameTok.bigint,
      goname: numTok.goname ?? nameTok.goname,
    };
  }

  function parseMessage(scope) {
    const name = next().t;
    const msg = { name, full: [...scope, name].join('.'), fields: [], messages: [], enums: [], oneofs: [] };
    expect('{');
    while (peek() !== '}') {
      const tok = next();
      if (tok.t === 'message') msg.messages.push(parseMessage([...scope, name]));
      else if (tok.t === 'enum') msg.enums.push(parseEnum([...scope, name]));
      else if (tok.t === 'oneof') {
        const oname = next().t;
        msg.oneofs.push(oname);
        expect('{');
        while (peek() !== '}') msg.fields.push(parseField(next(), oname));
        expect('}');
      } else if (tok.t === 'option' || tok.t === 'reserved' || tok.t === 'extensions') {
        while (next().t !== ';');
      } else if (tok.t === ';') {
        // stray
      } else msg.fields.push(parseField(tok, null));
    }
    expect('}');
    if (peek() === ';') next();
    return msg;
  }

  while (i < toks.length) {
    const tok = next();
    if (tok.t === 'syntax') {
      while (next().t !== ';');
    } else if (tok.t === 'package') {
      fileInfo.pkg = next().t;
      expect(';');
    } else if (tok.t === 'import') {
      fileInfo.imports.push(next().t.replace(/"/g, ''));
      expect(';');
    } else if (tok.t === 'option') {
      while (next().t !== ';');
    } else if (tok.t === 'message') fileInfo.messages.push(parseMessage([fileInfo.pkg]));
    else if (tok.t === 'enum') fileInfo.enums.push(parseEnum([fileInfo.pkg]));
    else if (tok.t === 'service') {
      const name = next().t;
      const methods = [];
      expect('{');
      while (peek() !== '}') {
        expect('rpc');
        const mname = next().t;
        expect('(');
        let reqStream = false;
        if (peek() === 'stream') {
          next();
          reqStream = true;
        }
        const req = next().t;
        expect(')');
        expect('returns');
        expect('(');
        let resStream = false;
        if (peek() === 'stream') {
          next();
          resStream = true;
        }
        const res = next().t;
        expect(')');
        if (peek() === '{') {
          let depth = 0;
          do {
            const x = next().t;
            if (x === '{') depth++;
            if (x === '}') depth--;
          } while (depth > 0);
        }
        if (peek() === ';') next();
        methods.push({ name: mname, req, res, reqStream, resStream });
      }
      expect('}');
      fileInfo.services.push({ name, methods });
    } else if (tok.t === ';') {
      // stray
    } else throw new Error(`${file}: unexpected ${tok.t}`);
  }
  return fileInfo;
}

// ---------- type registry ----------
const files = listProtos(protoDir).map(parseFile);
const types = new Map(); // full name -> {kind, pkg, tsName}
function register(pkg, msgOrEnum, kind, prefix) {
  const tsName = prefix ? `${prefix}_${msgOrEnum.name}` : msgOrEnum.name;
  types.set(msgOrEnum.full, { kind, pkg, tsName, def: msgOrEnum });
  if (kind === 'message') {
    for (const m of msgOrEnum.messages) register(pkg, m, 'message', tsName);
    for (const e of msgOrEnum.enums) register(pkg, e, 'enum', tsName);
  }
}
for (const f of files) {
  for (const m of f.messages) register(f.pkg, m, 'message', '');
  for (const e of f.enums) register(f.pkg, e, 'enum', '');
}

function resolve(typeName, scopeFull) {
  const parts = scopeFull.split('.');
  for (let k = parts.length; k >= 1; k--) {
    const cand = [...parts.slice(0, k), typeName].join('.');
    if (types.has(cand)) return types.get(cand);
  }
  if (types.has(typeName)) return types.get(typeName);
  throw new Error(`unknown type ${typeName} in ${scopeFull}`);
}

const SCALARS = {
  double: { ts: 'number', wt: 1, w: 'double', r: 'double', zero: '0' },
  float: { ts: 'number', wt: 5, w: 'float', r: 'float', zero: '0' },
  int32: { ts: 'number', wt: 0, w: 'int32', r: 'int32', zero: '0' },
  uint32: { ts: 'number', wt: 0, w: 'uint32', r: 'uint32', zero: '0' },
  int64: { ts: 'number', wt: 0, w: 'int64', r: 'int64', zero: '0' },
  uint64: { ts: 'number', wt: 0, w: 'uint64', r: 'uint64', zero: '0' },
  fixed32: { ts: 'number', wt: 5, w: 'fixed32', r: 'fixed32', zero: '0' },
  fixed64: { ts: 'bigint', wt: 1, w: 'fixed64', r: 'fixed64', zero: '0n' },
  bool: { ts: 'boolean', wt: 0, w: 'bool', r: 'bool', zero: 'false' },
  string: { ts: 'string', wt: 2, w: 'string', r: 'string', zero: "''" },
  bytes: { ts: 'Buffer', wt: 2, w: 'bytes', r: 'bytes', zero: 'EMPTY' },
};
const BIGINT = {
  int64: { ts: 'bigint', wt: 0, w: 'bigint64', r: 'bigint64', zero: '0n' },
  uint64: { ts: 'bigint', wt: 0, w: 'bigint64', r: 'biguint64', zero: '0n' },
};

// Go's field name as protoc-gen-gogo derives it (generator.CamelCase): etcd's unmarshal errors
// name fields by it ("proto: wrong wireType = 1 for field Key").
function goName(s) {
  let t = '';
  let i = 0;
  if (s[0] === '_') {
    t += 'X';
    i++;
  }
  const lower = (c) => c >= 'a' && c <= 'z';
  for (; i < s.length; i++) {
    let c = s[i];
    if (c === '_' && i + 1 < s.length && lower(s[i + 1])) continue;
    if (c >= '0' && c <= '9') {
      t += c;
      continue;
    }
    if (lower(c)) c = c.toUpperCase();
    t += c;
    while (i + 1 < s.length && lower(s[i + 1])) t += s[++i];
  }
  return t;
}

const UNSUPPORTED = new Set(['sint32', 'sint64', 'sfixed32', 'sfixed64', 'map', 'group']);

function fieldInfo(f, scopeFull, curPkg) {
  if (UNSUPPORTED.has(f.type)) throw new Error(`${scopeFull}.${f.name}: type ${f.type} is not supported by gen-proto`);
  if (SCALARS[f.type]) {
    const s = f.bigint && BIGINT[f.type] ? BIGINT[f.type] : SCALARS[f.type];
    return { kind: 'scalar', ...s, initTs: f.type === 'bytes' ? 'Uint8Array' : s.ts };
  }
  const t = resolve(f.type, scopeFull);
  const ref = t.pkg === curPkg ? t.tsName : `${t.pkg}.${t.tsName}`;
  if (t.kind === 'enum') return { kind: 'enum', ts: ref, initTs: ref, wt: 0, w: 'int32', r: 'int32', zero: '0', pkg: t.pkg };
  const fn = t.pkg === curPkg ? '' : `${t.pkg}.`;
  return {
    kind: 'message',
    ts: ref,
    initTs: `${ref}Init`,
    wt: 2,
    writeFn: `${fn}write${t.tsName}`,
    readFn: `${fn}read${t.tsName}`,
    pkg: t.pkg,
  };
}

// ---------- emit ----------
fs.mkdirSync(outDir, { recursive: true });
const byPkg = new Map();
for (const f of files) {
  if (!byPkg.has(f.pkg)) byPkg.set(f.pkg, { pkg: f.pkg, messages: [], enums: [], services: [] });
  const p = byPkg.get(f.pkg);
  p.messages.push(...f.messages);
  p.enums.push(...f.enums);
  p.services.push(...f.services);
}

for (const p of byPkg.values()) {
  const out = [];
  const deps = new Set();
  const body = [];
  const emitEnum = (e, tsName) => {
    body.push(`export enum ${tsName} {`);
    for (const v of e.values) body.push(`  ${v.name} = ${v.num},`);
    body.push('}', '');
  };
  const emitMessage = (m, tsName) => {
    for (const e of m.enums) emitEnum(e, `${tsName}_${e.name}`);
    for (const nm of m.messages) emitMessage(nm, `${tsName}_${nm.name}`);
    const fields = m.fields.map((f) => ({ f, info: fieldInfo(f, m.full, p.pkg) }));
    for (const { info } of fields) if (info.pkg && info.pkg !== p.pkg) deps.add(info.pkg);
    // decoded shape
    body.push(`export interface ${tsName} {`);
    for (const { f, info } of fields) {
      const opt = !f.repeated && (info.kind === 'message' || f.oneof);
      body.push(`  ${f.name}${opt ? '?' : ''}: ${info.ts}${f.repeated ? '[]' : ''};`);
    }
    body.push('}', '');
    body.push(`export interface ${tsName}Init {`);
    for (const { f, info } of fields) body.push(`  ${f.name}?: ${info.initTs}${f.repeated ? '[]' : ''};`);
    body.push('}', '');
    // writer
    body.push(`export function write${tsName}(w: Writer, m: ${tsName}Init): void {`);
    for (const { f, info } of fields) {
      const acc = `m.${f.name}`;
      const tag = (wt) => `w.uint32(${(f.num << 3) | wt});`;
      if (f.repeated) {
        if (info.kind === 'message') {
          body.push(`  if (${acc}) for (const v of ${acc}) { ${tag(2)} const s = w.beginLen(); ${info.writeFn}(w, v); w.endLen(s); }`);
        } else if (info.wt === 2) {
          body.push(`  if (${acc}) for (const v of ${acc}) { ${tag(2)} w.${info.w}(v); }`);
        } else {
          body.push(`  if (${acc} && ${acc}.length) { ${tag(2)} const s = w.beginLen(); for (const v of ${acc}) w.${info.w}(v); w.endLen(s); }`);
        }
      } else if (info.kind === 'message') {
        body.push(`  if (${acc}) { ${tag(2)} const s = w.beginLen(); ${info.writeFn}(w, ${acc}); w.endLen(s); }`);
      } else {
        const cond = f.oneof ? `${acc} !== undefined` : info.w === 'bytes' || info.w === 'string' ? `${acc} && ${acc}.length` : acc;
        body.push(`  if (${cond}) { ${tag(info.wt)} w.${info.w}(${acc}); }`);
      }
    }
    body.push('}', '');
    body.push(`export function encode${tsName}(m: ${tsName}Init): Buffer {`);
    body.push(`  const w = new Writer();`, `  write${tsName}(w, m);`, `  return w.finish();`, '}', '');
    // reader: etcd's (gogoproto) Unmarshal, field by field; see Reader in ../wire.ts
    body.push(`export function read${tsName}(r: Reader, into?: ${tsName}): ${tsName} {`);
    const init = fields
      .filter(({ f, info }) => !(info.kind === 'message' && !f.repeated) && !f.oneof)
      .map(({ f, info }) => `${f.name}: ${f.repeated ? '[]' : info.zero}`);
    body.push(`  const m: ${tsName} = into ?? { ${init.join(', ')} };`);
    body.push('  const end = r.end;');
    body.push('  while (r.pos < end) {', `    const t = r.tag('${tsName}');`, '    switch (t >>> 3) {');
    for (const { f, info } of fields) {
      const check = (wt) => `if ((t & 7) !== ${wt}) r.wrongType(t, '${f.goname ?? goName(f.name)}');`;
      // a oneof keeps only its last member, as Go's interface field
      const siblings = f.oneof ? fields.filter((x) => x.f.oneof === f.oneof && x.f !== f).map((x) => ` if (m.${x.f.name} !== undefined) delete m.${x.f.name};`).join('') : '';
      body.push(`      case ${f.num}: {`);
      if (info.kind === 'message') {
        // a repeated singular message field merges into the first, as gogoproto (oneof members replace)
        const rd = f.repeated ? `${info.readFn}(r)` : f.oneof ? `${info.readFn}(r)` : `${info.readFn}(r, m.${f.name})`;
        body.push(`        ${check(2)}`);
        body.push(`        const o = r.enter();`);
        body.push(f.repeated ? `        m.${f.name}.push(${rd});` : `        m.${f.name} = ${rd};${siblings}`);
        body.push('        r.leave(o);');
      } else if (f.repeated && info.wt !== 2) {
        // packed or not, as gogoproto accepts both
        body.push(`        if ((t & 7) === 2) { const e = r.lenEnd(); while (r.pos < e) m.${f.name}.push(r.${info.r}()); }`);
        body.push(`        else { ${check(info.wt)} m.${f.name}.push(r.${info.r}()); }`);
      } else if (f.repeated) {
        body.push(`        ${check(info.wt)}`, `        m.${f.name}.push(r.${info.r}());`);
      } else {
        body.push(`        ${check(info.wt)}`, `        m.${f.name} = r.${info.r}();${siblings}`);
      }
      body.push('        break;', '      }');
    }
    body.push('      default:', '        r.skip(t & 7);', '    }', '  }', '  return m;', '}', '');
    body.push(`export function decode${tsName}(buf: Uint8Array): ${tsName} {`);
    body.push(`  return read${tsName}(new Reader(buf));`, '}', '');
  };
  for (const e of p.enums) emitEnum(e, e.name);
  for (const m of p.messages) emitMessage(m, m.name);

  // proto3 JSON mapping tables for the HTTP gateway (server/gateway): field names, kinds, enum names
  const json = { messages: {}, enums: {}, methods: {} };
  const describeEnum = (e, tsName) => {
    json.enums[e.full] = { go: `${p.pkg}.${tsName}`, values: Object.fromEntries(e.values.map((v) => [v.name, v.num])) };
  };
  const describeMessage = (m, tsName) => {
    for (const e of m.enums) describeEnum(e, `${tsName}_${e.name}`);
    for (const nm of m.messages) describeMessage(nm, `${tsName}_${nm.name}`);
    json.messages[m.full] = {
      fields: m.fields.map((f) => {
        const d = { name: f.name, json: f.name.replace(/_([a-zA-Z0-9])/g, (_, c) => c.toUpperCase()) };
        if (SCALARS[f.type]) d.type = f.type;
        else {
          const t = resolve(f.type, m.full);
          d.type = t.kind;
          d.ref = t.def.full;
        }
        if (f.repeated) d.repeated = true;
        if (f.bigint && BIGINT[f.type]) d.bigint = true;
        if (f.oneof) d.oneof = f.oneof;
        return d;
      }),
    };
  };
  for (const e of p.enums) describeEnum(e, e.name);
  for (const m of p.messages) describeMessage(m, m.name);
  for (const s of p.services)
    for (const m of s.methods) json.methods[`/${p.pkg}.${s.name}/${m.name}`] = [resolve(m.req, p.pkg).def.full, resolve(m.res, p.pkg).def.full];
  body.push(`export const PROTO_JSON: ProtoJsonTable = ${JSON.stringify(json)};`, '');

  // services
  let needGrpc = false;
  for (const s of p.services) {
    needGrpc = true;
    const ref = (n) => {
      const t = resolve(n, p.pkg);
      if (t.pkg !== p.pkg) deps.add(t.pkg);
      const pre = t.pkg === p.pkg ? '' : `${t.pkg}.`;
      return { ts: `${pre}${t.tsName}`, enc: `${pre}encode${t.tsName}`, dec: `${pre}decode${t.tsName}` };
    };
    body.push(`export const ${s.name}Service = {`);
    for (const m of s.methods) {
      const rq = ref(m.req);
      const rs = ref(m.res);
      body.push(`  ${m.name}: {`);
      body.push(`    path: '/${p.pkg}.${s.name}/${m.name}',`);
      body.push(`    requestStream: ${m.reqStream},`, `    responseStream: ${m.resStream},`);
      body.push(`    requestSerialize: ${rq.enc},`, `    requestDeserialize: ${rq.dec},`);
      body.push(`    responseSerialize: ${rs.enc},`, `    responseDeserialize: ${rs.dec},`);
      body.push(`  } as MethodDefinition<${rq.ts}Init, ${rs.ts}Init>,`);
    }
    body.push('};', '');
    body.push(`export interface ${s.name}Handlers extends UntypedServiceImplementation {`);
    for (const m of s.methods) {
      const rq = ref(m.req).ts;
      const rs = ref(m.res).ts;
      const kind = m.reqStream && m.resStream ? 'handleBidiStreamingCall' : m.reqStream ? 'handleClientStreamingCall' : m.resStream ? 'handleServerStreamingCall' : 'handleUnaryCall';
      body.push(`  ${m.name}: ${kind}<${rq}, ${rs}Init>;`);
    }
    body.push('}', '');
  }

  out.push('// Generated by scripts/gen-proto.mjs from node-core/proto. Do not edit.');
  out.push('/* eslint-disable */');
  out.push(`import { Reader, Writer, EMPTY } from '../wire';`);
  out.push('void EMPTY;');
  out.push(`import type { ProtoJsonTable } from '../json-descriptor';`);
  if (needGrpc) {
    out.push(
      `import type { MethodDefinition, UntypedServiceImplementation, handleUnaryCall, handleBidiStreamingCall, handleServerStreamingCall, handleClientStreamingCall } from '@grpc/grpc-js';`,
    );
  }
  for (const d of [...deps].sort()) out.push(`import * as ${d} from './${d}';`);
  out.push('');
  fs.writeFileSync(path.join(outDir, `${p.pkg}.ts`), out.concat(body).join('\n'));
}
console.log(`gen-proto: ${[...byPkg.keys()].join(', ')} -> ${path.relative(root, outDir)}`);
