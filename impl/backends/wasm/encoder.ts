/**
 * A small WebAssembly binary encoder: just what the kernels need (types, an
 * imported shared memory and functions, defined functions, exports), and a
 * code builder with the scalar and SIMD opcodes they use. Writing the bytes
 * here keeps the kernels' source in this repository with no toolchain.
 * (Binary format: https://webassembly.github.io/spec/core/binary/.)
 */

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32.const / i64.const immediates). */
export function sleb(value: number | bigint): number[] {
  let n = BigInt(value);
  const out: number[] = [];
  for (;;) {
    const byte = Number(n & 0x7fn);
    n >>= 7n;
    const done = (n === 0n && (byte & 0x40) === 0) || (n === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function f64Bytes(x: number): number[] {
  return [...new Uint8Array(new Float64Array([x]).buffer)];
}

/**
 * Byte runs joined into one array, each copied once. (A kernel's body is tens of thousands of bytes: spread into
 * new arrays at each level of the module, as numbers, its copies made megabytes of garbage for each kernel.)
 */
function concat(parts: readonly ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function name(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  return concat([uleb(bytes.length), bytes]);
}

function vec(items: readonly ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  return concat([uleb(items.length), ...items]);
}

function section(id: number, content: Uint8Array): Uint8Array<ArrayBuffer> {
  return concat([[id, ...uleb(content.length)], content]);
}

/** The body of one function: its locals (after the params) and its instructions. */
export class Code {
  readonly bytes: number[] = [];
  private readonly localTypes: ValType[] = [];

  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[] = []) {}

  /** A new local of type t; returns its index. */
  local(t: ValType): number {
    this.localTypes.push(t);
    return this.params.length + this.localTypes.length - 1;
  }

  op(...bytes: number[]): this {
    this.bytes.push(...bytes);
    return this;
  }

  /** Bytes emitted elsewhere (code moved after a prologue), appended one by one: a spread of a whole body could overflow the stack. */
  append(bytes: readonly number[]): this {
    for (const byte of bytes) this.bytes.push(byte);
    return this;
  }

  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(0x22, ...uleb(i));
  }
  i32(n: number): this {
    return this.op(0x41, ...sleb(n));
  }
  f64(x: number): this {
    return this.op(0x44, ...f64Bytes(x));
  }
  call(funcIndex: number): this {
    return this.op(0x10, ...uleb(funcIndex));
  }
  /** A SIMD instruction: the 0xfd prefix, its opcode and immediates. */
  simd(opcode: number, ...immediates: number[]): this {
    return this.op(0xfd, ...uleb(opcode), ...immediates);
  }
  /** A memory access's immediate: alignment (log2 bytes) and offset. */
  static memarg(alignLog2: number, offset = 0): number[] {
    return [...uleb(alignLog2), ...uleb(offset)];
  }

  /** The encoded body: locals grouped by runs of one type, the instructions, end. */
  encode(): Uint8Array<ArrayBuffer> {
    const groups: number[][] = [];
    for (let i = 0; i < this.localTypes.length; ) {
      let j = i;
      while (j < this.localTypes.length && this.localTypes[j] === this.localTypes[i]) j++;
      groups.push([...uleb(j - i), this.localTypes[i]!]);
      i = j;
    }
    const locals = vec(groups);
    return concat([uleb(locals.length + this.bytes.length + 1), locals, this.bytes, [0x0b]]);
  }
}

/** Scalar opcodes the kernels use. */
export const OP = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  void: 0x40,
  i32Load: 0x28,
  f32Load: 0x2a,
  f64Load: 0x2b,
  f32Store: 0x38,
  i32Load16U: 0x2f,
  i32Store16: 0x3b,
  f64Store: 0x39,
  i32Eqz: 0x45,
  i32LtU: 0x49,
  i32GeU: 0x4f,
  i64Ne0: [0x42, 0x00, 0x52] as const, // i64.const 0; i64.ne
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32Shl: 0x74,
  i32And: 0x71,
  f32DemoteF64: 0xb6,
  f64PromoteF32: 0xbb,
} as const;

/** SIMD opcodes (after the 0xfd prefix). */
export const SIMD = {
  load: 0x00,
  store: 0x0b,
  const: 0x0c,
  shuffle: 0x0d,
  i32x4Splat: 0x11,
  i64x2Splat: 0x12,
  f32x4Splat: 0x13,
  f64x2Splat: 0x14,
  i64x2ExtractLane: 0x1d,
  f32x4ExtractLane: 0x1f,
  f32x4ReplaceLane: 0x20,
  f64x2ExtractLane: 0x21,
  f64x2ReplaceLane: 0x22,
  i16x8GtS: 0x31,
  i32x4Eq: 0x37,
  i32x4LtS: 0x39,
  i32x4GtS: 0x3b,
  f32x4Eq: 0x41,
  f32x4Ne: 0x42,
  f32x4Lt: 0x43,
  f32x4Gt: 0x44,
  f32x4Le: 0x45,
  f32x4Ge: 0x46,
  f64x2Eq: 0x47,
  f64x2Ne: 0x48,
  f64x2Lt: 0x49,
  f64x2Gt: 0x4a,
  not: 0x4d,
  and: 0x4e,
  andnot: 0x4f,
  or: 0x50,
  xor: 0x51,
  bitselect: 0x52,
  anyTrue: 0x53,
  f32x4DemoteF64x2Zero: 0x5e,
  f64x2PromoteLowF32x4: 0x5f,
  load16x4U: 0x04,
  load64Zero: 0x5d,
  store64Lane: 0x5b,
  i32x4ExtractLane: 0x1b,
  i32x4ReplaceLane: 0x1c,
  i16x8NarrowI32x4U: 0x86,
  i32x4ExtendLowI16x8U: 0xa9,
  i32x4ExtendHighI16x8U: 0xaa,
  i32x4Shl: 0xab,
  i32x4ShrU: 0xad,
  i32x4Add: 0xae,
  i32x4Sub: 0xb1,
  i32x4MinS: 0xb6,
  i32x4MinU: 0xb7,
  i32x4MaxS: 0xb8,
  i64x2ShrS: 0xcc,
  i64x2Add: 0xce,
  i64x2Eq: 0xd6,
  f32x4Abs: 0xe0,
  f32x4Neg: 0xe1,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
  f32x4Pmin: 0xea,
  f64x2Abs: 0xec,
  f64x2Neg: 0xed,
  f64x2Sqrt: 0xef,
  f64x2Add: 0xf0,
  f64x2Sub: 0xf1,
  f64x2Mul: 0xf2,
  f64x2Div: 0xf3,
  i32x4TruncSatF32x4S: 0xf8,
  f32x4ConvertI32x4S: 0xfa,
  f32x4RelaxedMadd: 0x105,
  f64x2RelaxedMadd: 0x107,
  // the FP16 proposal (behind V8's --experimental-wasm-fp16)
  f16x8DemoteF32x4Zero: 0x149,
  f32x4PromoteLowF16x8: 0x14b,
} as const;

export interface ImportedFunction {
  readonly module: string;
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

export interface ModuleSpec {
  /** An imported memory: shared ones need a maximum (pages of 64 KiB). */
  readonly memory: { readonly module: string; readonly name: string; readonly minimum: number; readonly maximum: number; readonly shared: boolean };
  readonly imports: readonly ImportedFunction[];
  /** Defined functions, exported under their names; indices follow the imports. */
  readonly functions: readonly { readonly name: string; readonly code: Code }[];
}

/** The module's bytes. */
export function encodeModule(spec: ModuleSpec): Uint8Array<ArrayBuffer> {
  const signatures = [...spec.imports, ...spec.functions.map((f) => f.code)];
  const types = signatures.map((s) => concat([[0x60], vec(s.params.map((t) => [t])), vec(s.results.map((t) => [t]))]));
  const { memory } = spec;
  const imports = [
    concat([name(memory.module), name(memory.name), [0x02, memory.shared ? 0x03 : 0x01, ...uleb(memory.minimum), ...uleb(memory.maximum)]]),
    ...spec.imports.map((f, i) => concat([name(f.module), name(f.name), [0x00, ...uleb(i)]])),
  ];
  const functionTypes = spec.functions.map((_, i) => uleb(spec.imports.length + i));
  const exports = spec.functions.map((f, i) => concat([name(f.name), [0x00, ...uleb(spec.imports.length + i)]]));
  return concat([
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    section(1, vec(types)),
    section(2, vec(imports)),
    section(3, vec(functionTypes)),
    section(7, vec(exports)),
    section(10, vec(spec.functions.map((f) => f.code.encode()))),
  ]);
}
