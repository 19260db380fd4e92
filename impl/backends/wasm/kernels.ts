/**
 * NAdam's per-element update as WebAssembly SIMD, generated per variant.
 *
 * The sequence of roundings is the typed-array kernel's (impl/backends/typed-array/kernels.ts,
 * itself spec/nadam/step.ts fused into one pass): every SIMD add, sub, mul, div
 * and sqrt rounds once to the opmath (lane) type, as each PyTorch kernel does;
 * float16 / bfloat16 tensors compute in float32 lanes, decoded on load, each
 * kernel's result rounded to the dtype (`round16`), encoded on store. Everything that is fixed for a whole param (lane type,
 * profile, path, maximize, the weight decay's kind, lerp's branch) is decided
 * when the code is generated, so the loop has no branches; the host scalars
 * arrive as float64 arguments already rounded to the lane type.
 *
 * Exact fma, which the `vectorized` profile needs and WebAssembly SIMD lacks:
 * - float32 lanes: each pair of lanes promoted to float64, where x·y is exact;
 *   the sum x·y + z made round-to-odd (TwoSum's error decides the last bit)
 *   and demoted once: correct because 53 ≥ 24 + 2 (Boldo & Melquiond 2008);
 * - float64 lanes: Dekker's exact product, TwoSum, and the sum of the two error
 *   terms rounded to odd (the same algorithm as spec/float/fma.ts's fma64);
 *   lanes with a zero operand take x·y + z, and lanes outside the algorithm's
 *   safe exponent range call the host's exact fma;
 * - `relaxed`: f32x4/f64x2.relaxed_madd, used only when a start-up probe has
 *   shown it fused on this machine (probe.ts).
 */
import { Code, F64, I32, OP, SIMD, V128, encodeModule, sleb, type ImportedFunction, type ModuleSpec, type ValType } from "./encoder.ts";

export type Lane = "float32" | "float64";
export type FmaStrategy = "emulated" | "relaxed";

/** What one generated kernel is specialised for. */
export interface KernelVariant {
  readonly lane: Lane;
  /** The `vectorized` profile: add(alpha), lerp and addcmul fuse their multiply-add. */
  readonly fused: boolean;
  /** The foreach path's denominator: sqrt(v) / sqrt(bias_correction2), not sqrt(v / bias_correction2). */
  readonly foreach: boolean;
  readonly maximize: boolean;
  readonly weightDecay: "none" | "decoupled" | "l2";
  /** lerp's form: |1 - beta1| < 0.5. */
  readonly smallWeight: boolean;
  readonly fma: FmaStrategy;
  /**
   * float16 / bfloat16 tensors (float32 lanes): the storage format, which every
   * kernel's result is rounded to; absent for float32 / float64 storage.
   */
  readonly storage?: "float16" | "bfloat16";
  /** 16-bit only: the elements past PyTorch's vectorized main loop, where add(alpha) is computed unfused in the dtype. */
  readonly scalarLoop?: boolean;
  /** 16-bit only: the differentiable branch, which rounds its scaled terms to the dtype. */
  readonly differentiable?: boolean;
  /**
   * float16 only: the kernel's scalars lie where they keep some results finite (`outBounded` in the step function):
   * lerp's weight w and beta2 in [0, 1] (then 1 - w in [0, 1] and w - 1 in [-1, 0]), L2 weight decay's alpha in
   * [-1, 1], eps in [-8, 8]. (PyTorch checks betas in [0, 1) when the optimizer is made, but a param
   * group can be changed after; the others it does not bound.)
   */
  readonly boundedScalars?: boolean;
  /**
   * float16 only: round, decode and encode with the WebAssembly FP16 proposal's conversions (f16x8.demote_f32x4_zero,
   * f32x4.promote_low_f16x8: F16C's vcvtps2ph / vcvtph2ps on x86-64), in place of the integer and float32 sequences
   * below; where the engine has them and a start-up probe found them exact (probe.ts).
   */
  readonly fp16?: boolean;
}

/** The kernel's float64 arguments after (p, g, m, v, n), each already rounded to the lane type. */
export const KERNEL_SCALARS = ["decay", "alpha", "w", "wMinusOne", "oneMinusW", "beta2", "oneMinusBeta2", "bc2", "bcSqrt", "eps", "step1", "step2"] as const;
export type KernelScalar = (typeof KERNEL_SCALARS)[number];

/**
 * step(p, g, m, v, n, ...scalars): byte offsets of four arrays of n lane-type
 * numbers in the shared memory; p, m, v updated in place.
 */
export type StepKernel = (p: number, g: number, m: number, v: number, n: number, ...scalars: number[]) => void;

/**
 * steps(list, count, scalars): `step` on count tensors with the same scalars,
 * in order; list is the int32 index (byte offset / 4) of count (p, g, m, v, n)
 * int32 quintuples (STEPS_ENTRY_BYTES each; p, g, m and v byte offsets),
 * scalars the float64 index (byte offset / 8) of the float64 scalar arguments.
 * One call from JavaScript for a whole group of small tensors, with no float64
 * arguments (JavaScript boxes each one it passes), and indices, not byte
 * offsets: below 2^30 in any 4 GiB memory, small integers that JavaScript
 * passes unboxed wherever the call is, whether V8's small integers are 32-bit
 * (Node's builds) or 31-bit (where it compresses pointers). A byte offset past
 * them is a boxed number, an allocation per call where the engine does not
 * inline the call: 4 KB a step of a 16M-element param, one call per
 * 2^16-number chunk, measured.
 */
export type StepsKernel = (list: number, count: number, scalars: number) => void;
export const STEPS_ENTRY_BYTES = 20;

/**
 * `steps` over one entry: (p, g, m, v, n) written into `entry` (one entry's view in the memory, at int32 index
 * `entryIndex`), the arguments read at float64 index `argsIndex`. Only integers cross into WebAssembly: a float passed
 * from JavaScript is boxed until the engine optimises the caller, which a large tensor's few hundred steps do not make
 * it do.
 */
export function stepsOnce(steps: StepsKernel, entry: Int32Array, entryIndex: number, p: number, g: number, m: number, v: number, n: number, argsIndex: number): void {
  entry[0] = p;
  entry[1] = g;
  entry[2] = m;
  entry[3] = v;
  entry[4] = n;
  steps(entryIndex, 1, argsIndex);
}

interface LaneOps {
  readonly lanes: number;
  readonly size: number;
  readonly alignLog2: number;
  readonly add: number;
  readonly sub: number;
  readonly mul: number;
  readonly div: number;
  readonly sqrt: number;
  readonly neg: number;
  readonly splat: number;
  readonly extract: number;
  readonly replace: number;
  readonly load: number;
  readonly store: number;
  readonly madd: number;
}

const LANE_OPS: Readonly<Record<Lane, LaneOps>> = {
  float32: { lanes: 4, size: 4, alignLog2: 2, add: SIMD.f32x4Add, sub: SIMD.f32x4Sub, mul: SIMD.f32x4Mul, div: SIMD.f32x4Div, sqrt: SIMD.f32x4Sqrt, neg: SIMD.f32x4Neg, splat: SIMD.f32x4Splat, extract: SIMD.f32x4ExtractLane, replace: SIMD.f32x4ReplaceLane, load: OP.f32Load, store: OP.f32Store, madd: SIMD.f32x4RelaxedMadd },
  float64: { lanes: 2, size: 8, alignLog2: 3, add: SIMD.f64x2Add, sub: SIMD.f64x2Sub, mul: SIMD.f64x2Mul, div: SIMD.f64x2Div, sqrt: SIMD.f64x2Sqrt, neg: SIMD.f64x2Neg, splat: SIMD.f64x2Splat, extract: SIMD.f64x2ExtractLane, replace: SIMD.f64x2ReplaceLane, load: OP.f64Load, store: OP.f64Store, madd: SIMD.f64x2RelaxedMadd },
};

/** The host function float64 lanes fall back to outside the fast algorithm's range: x·y + z rounded once. */
export const EXACT_FMA64_IMPORT: ImportedFunction = { module: "env", name: "fmaExact64", params: [F64, F64, F64], results: [F64] };
const EXACT_FMA64 = 0; // its function index (the only import)

/** An expression: emits code that leaves one v128 on the stack. */
type Expr = () => void;

const V128_ZERO = new Array<number>(16).fill(0);
const SHUFFLE_HIGH_PAIR = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** The 16-bit lanes of two vectors a and b, alternated: a0 b0 a1 b1 ... (low: lanes 0-3; high: lanes 4-7). */
const SHUFFLE_INTERLEAVE_LOW_16 = [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23];
const SHUFFLE_INTERLEAVE_HIGH_16 = [8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31];
const SHUFFLE_JOIN_LOWS = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/** Expression helpers over one function's code, for one lane type. */
class VectorCode {
  readonly ops: LaneOps;
  private readonly constants = new Map<string, number>();
  private readonly prologue: (() => void)[] = [];
  private fmaTemps: number[] | undefined;
  /** Host-scalar operands (splats of a float64 argument) and how to splat their float64 form, for fma32. */
  readonly wide = new Map<Expr, { readonly key: string; readonly emit: () => void }>();

  constructor(
    readonly c: Code,
    readonly lane: Lane,
    readonly strategy: FmaStrategy,
  ) {
    this.ops = LANE_OPS[lane];
  }

  /** A local's value (one Expr per local, so that fma32 can tell which local an operand is). */
  at = (local: number): Expr => {
    let e = this.atExprs.get(local);
    if (e === undefined) {
      const made: Expr = () => void this.c.get(local);
      this.atExprs.set(local, (e = made));
      this.localOfExpr.set(made, local);
    }
    return e;
  };
  private readonly atExprs = new Map<number, Expr>();
  private readonly localOfExpr = new Map<Expr, number>();
  /**
   * Locals that hold, until assigned again, the float32 lanes in memory at an address (pushed by `address`, plus
   * `offset` bytes): the step kernel's inputs as loaded, in its main loop, where nothing is stored before the update's
   * end. fma32 promotes such an operand's halves from there, the same numbers: a load that the engine folds into the
   * conversion (x86-64: cvtps2pd from memory), not a conversion of a register and, for the high half, a shuffle first.
   */
  readonly inMemory = new Map<number, { readonly address: () => void; readonly offset: number }>();
  /**
   * Locals that hold, until assigned again, an fma32's result: the locals of its two halves as demoted (lanes 0-1 and
   * 2-3 in lanes 0-1), which fma32 promotes for such an operand instead of shuffling the high half down.
   */
  private readonly demoted = new Map<number, { readonly lo: number; readonly hi: number }>();
  /** The last fma32's demoted halves, and where its code ends (its result is what an assignment ending there sets). */
  private lastFma32: { readonly end: number; readonly lo: number; readonly hi: number } | undefined;
  assign(local: number, e: Expr): void {
    e();
    const last = this.lastFma32;
    if (last !== undefined && last.end === this.c.bytes.length) this.demoted.set(local, last);
    else this.demoted.delete(local);
    this.c.set(local);
    this.inMemory.delete(local);
  }
  /** Forget what `inMemory` and `demoted` say (before code that sets the locals otherwise). */
  forgetSources(): void {
    this.inMemory.clear();
    this.demoted.clear();
  }
  private binary = (opcode: number) => (a: Expr, b: Expr): Expr => () => {
    a();
    b();
    this.c.simd(opcode);
  };
  add = (a: Expr, b: Expr) => this.binary(this.ops.add)(a, b);
  sub = (a: Expr, b: Expr) => this.binary(this.ops.sub)(a, b);
  mul = (a: Expr, b: Expr) => this.binary(this.ops.mul)(a, b);
  div = (a: Expr, b: Expr) => this.binary(this.ops.div)(a, b);
  sqrt = (a: Expr): Expr => () => {
    a();
    this.c.simd(this.ops.sqrt);
  };
  neg = (a: Expr): Expr => () => {
    a();
    this.c.simd(this.ops.neg);
  };

  /** A v128 local set once before the loop (constants are emitted by `emitPrologue`). */
  private constant(key: string, emit: () => void): number {
    let local = this.constants.get(key);
    if (local === undefined) {
      local = this.c.local(V128);
      const target = local;
      this.constants.set(key, local);
      this.prologue.push(() => {
        emit();
        this.c.set(target);
      });
    }
    return local;
  }
  f64Splat(x: number): number {
    return this.constant(`f64 ${x}`, () => this.c.f64(x).simd(SIMD.f64x2Splat));
  }
  private i64Splat(n: number): number {
    return this.constant(`i64 ${n}`, () => this.c.op(0x42, ...sleb(n)).simd(SIMD.i64x2Splat));
  }
  private readonly named = new Map<string, number>();
  /** A v128 scratch local of the kernel's own, by name. */
  tempOf(name: string): number {
    let local = this.named.get(name);
    if (local === undefined) this.named.set(name, (local = this.c.local(V128)));
    return local;
  }

  /** A v128 local holding a float32 constant in every lane. */
  f32Splat(x: number): number {
    return this.constant(`f32 ${x}`, () => this.c.f64(x).op(OP.f32DemoteF64).simd(SIMD.f32x4Splat));
  }
  i32Splat(n: number): number {
    return this.constant(`i32 ${n}`, () => this.c.i32(n).simd(SIMD.i32x4Splat));
  }
  /** A v128 local holding the i32x4 lanes (a, b, a, b): a in each 64-bit lane's low word, b in its high word. */
  private i32Pairs(a: number, b: number): number {
    const bytes = [a, b, a, b].flatMap((n) => [0, 8, 16, 24].map((shift) => (n >>> shift) & 0xff));
    return this.constant(`i32 pairs ${a} ${b}`, () => this.c.simd(SIMD.const, ...bytes));
  }
  private i64One(): number {
    return this.i64Splat(1);
  }
  zero(): number {
    return this.constant("zero", () => this.c.simd(SIMD.const, ...V128_ZERO));
  }

  /** Emit the code that must run before the loop: the constants the kernel used (known once the body is generated). */
  emitPrologue(): void {
    for (const emit of this.prologue) emit();
  }

  private temps(): number[] {
    return (this.fmaTemps ??= Array.from({ length: 16 }, () => this.c.local(V128)));
  }

  /**
   * Round float32 lanes to a 16-bit format, keeping them float32 (ties to even).
   * bfloat16: on the bits. float16: |x| + k - k with k = 1.5·2^(e' + 13), e' =
   * x's exponent e clamped to [-14, 16], so that k's last place is float16's
   * quantum at e (and k is finite: below -14 the quantum is fixed, above 15 the
   * result overflows anyway). k comes from x's exponent bits, beside |x|, so
   * that the chain through a rounding is short: the kernel's roundings follow
   * one another, and their latency is what it waits on. ±65520 and beyond become
   * infinities, by an integer max with ∞'s bits (the rounded |x| is ≥ 0, so its
   * bits order as the numbers, and a NaN's are above ∞'s); the sign is put back
   * last (so -0 and tiny negatives stay negative).
   *
   * `bounded` (float16): the caller has shown |x| < 65520 or x not finite. Then nothing overflows, and x itself is
   * rounded, x + k - k: with |x| < 2^(e' + 1), x + k stays in k's binade [2^(e' + 13), 2^(e' + 14)) whatever x's sign,
   * where the grid is float16's quantum, of which k is an even multiple (ties still go to even), and the subtraction is
   * exact. Only a result 0 can have the wrong sign (+0, where x < 0): the sign is put back as above. e' needs no clamp
   * above (e ≤ 15): for ±∞ and NaN, exponent 255 + 13 wraps to a finite k (of exponent 12, negative), which they pass.
   */
  round16 = (format: "float16" | "bfloat16", x: Expr, bounded = false): Expr => () => {
    if (format === "float16" && this.fp16) return void (x(), this.roundFp16());
    const { c } = this;
    const t = this.tempOf("round16 x");
    x();
    if (format === "bfloat16") {
      c.tee(t).get(t).i32(16).simd(SIMD.i32x4ShrU).get(this.i32Splat(1)).simd(SIMD.and).simd(SIMD.i32x4Add);
      c.get(this.i32Splat(0x7fff)).simd(SIMD.i32x4Add).get(this.i32Splat(0xffff0000 | 0)).simd(SIMD.and);
      return;
    }
    const [magnitude, k] = [this.tempOf("round16 |x|"), this.tempOf("round16 k")];
    // k's bits: the exponent field clamped to [-14, 16], plus 13 and the significand 1.5 (0x06c00000 = (13 << 23) + 0x00400000)
    c.tee(t).get(this.i32Splat(0x7f800000)).simd(SIMD.and).get(this.i32Splat(0x38800000)).simd(SIMD.i32x4MaxS);
    if (bounded) {
      c.get(this.i32Splat(0x06c00000)).simd(SIMD.i32x4Add).set(k);
      c.get(t).get(k).simd(SIMD.f32x4Add).get(k).simd(SIMD.f32x4Sub);
      c.get(t).get(this.i32Splat(0x80000000 | 0)).simd(SIMD.and).simd(SIMD.or);
      return;
    }
    c.get(this.i32Splat(0x47800000)).simd(SIMD.i32x4MinS);
    c.get(this.i32Splat(0x06c00000)).simd(SIMD.i32x4Add).set(k);
    c.get(t).get(this.i32Splat(0x7fffffff)).simd(SIMD.and).tee(magnitude).get(k).simd(SIMD.f32x4Add).get(k).simd(SIMD.f32x4Sub);
    // |x| ≥ 65520 (0x477ff000): ∞'s bits, which the max then keeps
    c.get(magnitude).get(this.i32Splat(0x477fefff)).simd(SIMD.i32x4GtS).get(this.i32Splat(0x7f800000)).simd(SIMD.and).simd(SIMD.i32x4MaxS);
    c.get(t).get(this.i32Splat(0x80000000 | 0)).simd(SIMD.and).simd(SIMD.or);
  };

  /**
   * float16 only: the WebAssembly FP16 proposal's conversions, used for round16, loadDecoded8 and storeEncoded8 where
   * the engine has them (the variant's `fp16`). They convert as IEEE 754 does (round to nearest, ties to even,
   * subnormals kept, overflow to ∞) and keep a NaN a NaN of its sign, quiet, its payload cut or widened.
   */
  fp16 = false;

  /** round16 for float16 by the FP16 proposal's conversions: the float32 lanes on the stack to float16 and back. */
  private roundFp16(): void {
    this.c.simd(SIMD.f16x8DemoteF32x4Zero).simd(SIMD.f32x4PromoteLowF16x8);
  }

  /** 16-bit bits in the top half of each 32-bit lane (bits << 16, i32x4, on the stack) to float32 lanes. */
  decode16(format: "float16" | "bfloat16"): void {
    const { c } = this;
    // bfloat16: already the float32 number
    if (format === "bfloat16") return;
    // float16, with no float32 subnormal on the way (each costs a slow microcode assist, and NAdam's exp_avg_sq is often a
    // float16 subnormal). With e the 15 bits past the sign, shifted to float32's fields (e << 13), two candidates:
    // - (e << 13) + (112 << 23): the exponent rebiased by 127 - 15, the value of a normal number; for a subnormal (or zero)
    //   it is 2^-14·(1 + f/1024)/2 = 2^-15 + f·2^-25, above the value f·2^-24;
    // - ((e << 13) + (113 << 23)) - 2^-14, in float32: a subnormal's f·2^-24, exactly; for a normal number of value t,
    //   2t - 2^-14 ≥ t (rounded, still ≥ t, as t is a float32 number).
    // The smaller is the value. Then infinities and NaN to exponent 255, and the sign (already at bit 31).
    const [raw, shifted] = [this.tempOf("decode bits"), this.tempOf("decode shifted")];
    c.tee(raw).i32(3).simd(SIMD.i32x4ShrU).get(this.i32Splat(0x7fff << 13)).simd(SIMD.and).tee(shifted).get(this.i32Splat(112 << 23)).simd(SIMD.i32x4Add);
    c.get(shifted).get(this.i32Splat(113 << 23)).simd(SIMD.i32x4Add).get(this.f32Splat(2 ** -14)).simd(SIMD.f32x4Sub);
    c.simd(SIMD.f32x4Pmin);
    c.get(shifted).get(this.i32Splat(0x7bff << 13)).simd(SIMD.i32x4GtS).get(this.i32Splat(0x7f800000)).simd(SIMD.and).simd(SIMD.or);
    c.get(raw).get(this.i32Splat(0x80000000 | 0)).simd(SIMD.and).simd(SIMD.or);
  }

  /**
   * float32 lanes already rounded to a 16-bit format (on the stack) to their bits, as i32x4. A NaN becomes what
   * tensor/half.ts stores: bfloat16's bits quieted, float16's quiet NaN 0x7e00 of its sign. Every number a kernel stores
   * is a rounded arithmetic result, and WebAssembly's arithmetic NaNs are quiet (their payload's top bit, float32's bit
   * 22, set), which the rounding keeps: the encoding relies on it.
   */
  encode16(format: "float16" | "bfloat16"): void {
    const { c } = this;
    // bfloat16: the top 16 bits, already quiet for a NaN
    if (format === "bfloat16") return void c.i32(16).simd(SIMD.i32x4ShrU);
    // float16, with no float32 subnormal either. Two candidates for |x|, whose smaller (unsigned) is its bits:
    // - the bits of 0.5 + |x| less 0.5's: below 2^-14 (where 0.5 + |x| is exact) the subnormal's integer mantissa,
    //   |x|·2^24; above, at least 2^10, and more than the other candidate;
    // - ((|x|'s bits - 2^-14's) >> 13) + 0x400, unsigned: from 2^-14 the exponent rebiased by 15 - 127 and the
    //   significand's top 10 bits; below, the subtraction wraps, and the shift keeps it above 2^18.
    // Infinity gets 0x23c00, a quiet NaN 0x23e00 and more (bit 9 set, from the quiet bit): capped at 0x7c00 | bit 9,
    // above every finite number's bits, that is 0x7c00 and 0x7e00; then the sign.
    const [raw, magnitude, bits] = [this.tempOf("encode x"), this.tempOf("encode magnitude"), this.tempOf("encode bits")];
    c.tee(raw).get(this.i32Splat(0x7fffffff)).simd(SIMD.and).tee(magnitude).get(this.f32Splat(0.5)).simd(SIMD.f32x4Add).get(this.i32Splat(0x3f000000)).simd(SIMD.i32x4Sub);
    c.get(magnitude).get(this.i32Splat(0x38800000)).simd(SIMD.i32x4Sub).i32(13).simd(SIMD.i32x4ShrU).get(this.i32Splat(0x400)).simd(SIMD.i32x4Add);
    c.simd(SIMD.i32x4MinU).tee(bits);
    c.get(bits).get(this.i32Splat(0x200)).simd(SIMD.and).get(this.i32Splat(0x7c00)).simd(SIMD.or).simd(SIMD.i32x4MinU);
    c.get(raw).i32(16).simd(SIMD.i32x4ShrU).get(this.i32Splat(0x8000)).simd(SIMD.and).simd(SIMD.or);
  }

  /**
   * round16 for float16 where the result is known to be 0, ±∞, NaN or in float16's normal range (the square root of a
   * float16 number: from 2^-12): on the bits, ties to even, as bfloat16's rounding.
   */
  round16Normal = (x: Expr): Expr => () => {
    if (this.fp16) return void (x(), this.roundFp16());
    const { c } = this;
    const t = this.tempOf("round16 x");
    x();
    c.tee(t).get(t).i32(13).simd(SIMD.i32x4ShrU).get(this.i32Splat(1)).simd(SIMD.and).simd(SIMD.i32x4Add);
    c.get(this.i32Splat(0xfff)).simd(SIMD.i32x4Add).get(this.i32Splat(0xffffe000 | 0)).simd(SIMD.and);
  };

  /** 8 numbers of a 16-bit format at the address `address` pushes, decoded to float32 lanes: the low 4 into `low`, the high 4 into `high`. */
  loadDecoded8(format: "float16" | "bfloat16", address: () => void, low: number, high: number, offset = 0): void {
    const { c } = this;
    const loaded = this.tempOf("loaded");
    address();
    // each number into the top half of a 32-bit lane (interleaved with zeros: one instruction)
    c.simd(SIMD.load, ...Code.memarg(1, offset)).set(loaded);
    if (format === "float16" && this.fp16) {
      c.get(loaded).simd(SIMD.f32x4PromoteLowF16x8).set(low);
      c.get(loaded).get(loaded).simd(SIMD.shuffle, ...SHUFFLE_HIGH_PAIR).simd(SIMD.f32x4PromoteLowF16x8).set(high);
      return;
    }
    c.get(this.zero()).get(loaded).simd(SIMD.shuffle, ...SHUFFLE_INTERLEAVE_LOW_16);
    this.decode16(format);
    c.set(low);
    c.get(this.zero()).get(loaded).simd(SIMD.shuffle, ...SHUFFLE_INTERLEAVE_HIGH_16);
    this.decode16(format);
    c.set(high);
  }

  /** float32 lanes `low` then `high`, already rounded to a 16-bit format, stored as 8 numbers of it at the address `address` pushes. */
  storeEncoded8(format: "float16" | "bfloat16", address: () => void, low: number, high: number, offset = 0): void {
    const { c } = this;
    address();
    if (format === "float16" && this.fp16) {
      // the 8 numbers' bits, then a NaN's as tensor/half.ts stores it (encode16): the quiet NaN 0x7e00 of its sign
      const bits = this.tempOf("encoded bits");
      c.get(low).simd(SIMD.f16x8DemoteF32x4Zero).get(high).simd(SIMD.f16x8DemoteF32x4Zero).simd(SIMD.shuffle, ...SHUFFLE_JOIN_LOWS).set(bits);
      c.get(bits).get(this.i32Splat(0x80008000 | 0)).simd(SIMD.and).get(this.i32Splat(0x7e007e00)).simd(SIMD.or);
      c.get(bits);
      // NaN: the 15 bits past the sign above ∞'s (as signed 16-bit numbers, all non-negative)
      c.get(bits).get(this.i32Splat(0x7fff7fff)).simd(SIMD.and).get(this.i32Splat(0x7c007c00)).simd(SIMD.i16x8GtS);
      c.simd(SIMD.bitselect).simd(SIMD.store, ...Code.memarg(1, offset));
      return;
    }
    c.get(low);
    this.encode16(format);
    c.get(high);
    this.encode16(format);
    // each encoding is below 2^16: the narrowing keeps it
    c.simd(SIMD.i16x8NarrowI32x4U).simd(SIMD.store, ...Code.memarg(1, offset));
  }

  /** x·y + z rounded once to the lane type. */
  fma = (x: Expr, y: Expr, z: Expr): Expr => () => {
    if (this.strategy === "relaxed") {
      x();
      y();
      z();
      this.c.simd(this.ops.madd);
    } else if (this.lane === "float32") this.fma32(x, y, z);
    else this.fma64(x, y, z);
  };

  /**
   * `fma` for float32 lanes where x·y has at most 24 significant bits (bfloat16 numbers): from float32's smallest normal
   * up to its largest finite number the float32 product is exact, and its float32 sum with z is the fma. Fast mode
   * flags the other lanes where x ≠ 0 (with x = ±0 the product is exact too, or NaN as the fma is: y is the kernel's
   * scalar): below the normal range, overflowed, or NaN.
   */
  fmaShort = (x: Expr, y: Expr, z: Expr): Expr => () => {
    const { c } = this;
    if (this.strategy !== "emulated" || this.lane !== "float32" || !this.fast) return this.fma(x, y, z)();
    const [tx, product] = [this.tempOf("fmaShort x"), this.tempOf("fmaShort product")];
    this.assign(tx, x);
    c.get(tx);
    y();
    c.simd(SIMD.f32x4Mul).tee(product);
    z();
    c.simd(SIMD.f32x4Add);
    // risky: x ≠ 0 and not (2^-126 ≤ |x·y| < ∞)
    const [smallestNormal, infinity] = [this.f32Splat(2 ** -126), this.f32Splat(Infinity)];
    c.get(tx).get(this.zero()).simd(SIMD.f32x4Ne);
    c.get(product).simd(SIMD.f32x4Abs).tee(product).get(smallestNormal).simd(SIMD.f32x4Ge);
    c.get(product).get(infinity).simd(SIMD.f32x4Lt).simd(SIMD.and);
    c.simd(SIMD.andnot);
    const risk = (this.riskMask ??= c.local(V128));
    if (this.maskStarted) c.get(risk).simd(SIMD.or);
    c.set(risk);
    this.maskStarted = true;
  };

  /**
   * `sum` (f64x2, the float64 rounding of a + b) made round-to-odd, given the
   * addition's exact error `err`: when inexact and its last bit is even, one
   * unit in the last place towards the exact value. Lanes with a NaN error
   * (an infinite sum) are left alone.
   */
  private roundToOdd(sum: number, err: number): void {
    const { c } = this;
    const one = this.i64One();
    const zero = this.zero();
    c.get(sum);
    // step: +1 ulp (in magnitude) when err has sum's sign, else -1: (sign(err ^ sum) >> 63) | 1
    c.get(err).get(sum).simd(SIMD.xor).i32(63).simd(SIMD.i64x2ShrS).get(one).simd(SIMD.or);
    // only where err ≠ 0 (and is not NaN) and the last bit is 0
    c.get(err).get(zero).simd(SIMD.f64x2Ne);
    c.get(err).get(err).simd(SIMD.f64x2Eq).simd(SIMD.and);
    c.get(sum).get(one).simd(SIMD.and).get(zero).simd(SIMD.i64x2Eq).simd(SIMD.and);
    c.simd(SIMD.and).simd(SIMD.i64x2Add).set(sum);
  }

  /**
   * float32 lanes, inside `guarded`'s body: `fast` mode, where each fma leaves its risky lanes' trace in a local (fma32
   * a key, fmaShort a mask; below) rather than rounding to odd, as `exact` mode (outside) does. The kernel runs an
   * element's whole update fast and redoes it exact when any lane was risky.
   */
  private fast = false;
  /**
   * fmaShort's risky lanes, ORed as masks (the first fmaShort of a body sets it, so no body starts with a zeroing).
   */
  private riskMask: number | undefined;
  private maskStarted = false;
  /**
   * fma32's risk keys (i32x4 over the float64 sums' words), kept as their signed minimum (the first fma32 of a body
   * sets it): a lane is risky where the minimum lies below `riskBounds` (see fma32).
   */
  private riskKeys: number | undefined;
  private keysStarted = false;

  /**
   * The step kernel's 16-bit storage. With float16, every fma's exact result is 0, not finite, or at least 2^-101 in
   * magnitude (in float32's normal range), as its operands are float16 numbers (multiples of 2^-24 below 2^16) and
   * float32 values that are multiples of 2^-24 or of 2^-53 (or not finite), whatever the hyper-parameters:
   * - lerp's weights: 1 - beta1 in float64 is a multiple of 2^-53 (exact by Sterbenz's lemma for beta1 in [0.5, 2],
   *   else of magnitude above 0.5); so is w - 1 for that number w, and rounding either to float32 keeps it (a coarser
   *   grid, or exact: below 2^-29 a multiple of 2^-53 has at most 24 bits); lerp's g - m, rounded, is a multiple of
   *   2^-24 (the same argument); so each product is a multiple of 2^-77, its sum with a float16 number too;
   * - addcmul's (1 - beta2)·g: 1 - beta2 likewise, times g a multiple of 2^-77 (rounded, still), times g again of 2^-101.
   */
  storage: "float16" | "bfloat16" | undefined;

  /** Whether `guarded` runs fmas in fast mode first: float32 lanes with emulated fma. */
  get guards(): boolean {
    return this.lane === "float32" && this.strategy === "emulated";
  }

  /**
   * Emit `body` (code with fmas) then `commit` (what keeps its results) so
   * that the fmas are exact: where `guards`, `body` in fast mode, then `exact`
   * (code that does it all again in exact mode, commit included) in place of
   * `commit` when a lane was risky; otherwise `body` and `commit`.
   */
  guarded(body: () => void, commit: () => void, exact: () => void): void {
    const { c } = this;
    if (!this.guards) return void (body(), commit());
    [this.fast, this.maskStarted, this.keysStarted] = [true, false, false];
    body();
    this.fast = false;
    if (!this.maskStarted && !this.keysStarted) return void commit();
    if (this.keysStarted) c.get(this.riskKeys!).get(this.riskBounds()).simd(SIMD.i32x4LtS);
    if (this.maskStarted) c.get(this.riskMask!);
    if (this.maskStarted && this.keysStarted) c.simd(SIMD.or);
    c.simd(SIMD.anyTrue).op(OP.if, OP.void);
    exact();
    c.op(OP.else);
    commit();
    c.op(OP.end);
  }

  /**
   * float32 fma, two lanes at a time in float64, where x·y is exact and
   * x·y + z is rounded once; demoting that sum rounds a second time. Fast mode
   * flags the lanes where that can differ from one rounding (`riskKey`); exact
   * mode makes the float64 sum round-to-odd (TwoSum's error decides the last
   * bit), which one demotion then rounds correctly: 53 ≥ 24 + 2 (Boldo &
   * Melquiond 2008).
   */
  private fma32(x: Expr, y: Expr, z: Expr): void {
    const { c } = this;
    const [tx, ty, tz, a, b, zz, prod, zv, err, lo, hi] = this.temps() as [number, number, number, number, number, number, number, number, number, number, number];
    // A host scalar's float64 form is a constant (no promotion per element); other operands are promoted half by half,
    // from memory where they are there (`inMemory`), from an earlier fma32's demoted halves where they are its result.
    const operands = ([[x, tx, a], [y, ty, b], [z, tz, zz]] as const).map(([e, t, to]) => {
      const wide = this.wide.get(e);
      const local = this.localOfExpr.get(e);
      const address = local === undefined ? undefined : this.inMemory.get(local);
      const halves = local === undefined || address !== undefined ? undefined : this.demoted.get(local);
      if (wide === undefined && address === undefined && halves === undefined) this.assign(t, e);
      return { t, to, address, halves, wide: wide === undefined ? undefined : this.constant(`wide ${wide.key}`, wide.emit) };
    });
    const [wa, wb, wz] = operands.map((o) => o.wide ?? o.to) as [number, number, number];
    const promoteHalf = (half: 0 | 1): void => {
      for (const { t, to, wide, address, halves } of operands) {
        if (wide !== undefined) continue;
        if (address !== undefined) {
          address.address();
          c.simd(SIMD.load64Zero, ...Code.memarg(2, address.offset + 8 * half));
        } else if (halves !== undefined) {
          c.get(half === 0 ? halves.lo : halves.hi);
        } else {
          c.get(t);
          if (half === 1) c.get(t).simd(SIMD.shuffle, ...SHUFFLE_HIGH_PAIR);
        }
        c.simd(SIMD.f64x2PromoteLowF32x4).set(to);
      }
    };
    for (const [half, result] of [[0, lo], [1, hi]] as const) {
      promoteHalf(half);
      c.get(wa).get(wb).simd(SIMD.f64x2Mul).set(prod); // exact
      c.get(prod).get(wz).simd(SIMD.f64x2Add).set(result);
      if (this.fast) {
        this.riskKey(result);
        continue;
      }
      // TwoSum: err = (prod - (sum - zv)) + (z - zv), zv = sum - prod
      c.get(result).get(prod).simd(SIMD.f64x2Sub).set(zv);
      c.get(prod).get(result).get(zv).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Sub);
      c.get(wz).get(zv).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Add).set(err);
      this.roundToOdd(result, err);
    }
    const [demotedLo, demotedHi] = [c.local(V128), c.local(V128)];
    c.get(lo).simd(SIMD.f32x4DemoteF64x2Zero).tee(demotedLo).get(hi).simd(SIMD.f32x4DemoteF64x2Zero).tee(demotedHi).simd(SIMD.shuffle, ...SHUFFLE_JOIN_LOWS);
    this.lastFma32 = { end: c.bytes.length, lo: demotedLo, hi: demotedHi };
  }

  /**
   * Fast mode: fold the float64 sums `sum` (f64x2) of two fma32 lanes into `riskKeys`. Let e = x·y + z (exact) and s its
   * float64 rounding, which the lane demotes. x, y, z are float32 numbers, multiples of 2^-149, so e is a multiple of
   * 2^-298: 0 or at least 2^-298 in magnitude, float64 normal numbers (or e is not finite).
   * - Demoting s gives e's float32 rounding unless s is a float32 midpoint (halfway between two neighbouring float32
   *   numbers; 2^128 - 2^103, halfway to float32's overflow, counts). Every float32 midpoint is a float64 number
   *   (odd multiples of 2^-150 or coarser, within float64's normal range): were one strictly between e and s, it would
   *   be nearer e than s, which is e's nearest float64 number; so none is, and demoting e or s rounds to the same
   *   side, except where s itself is a midpoint, which demotes to even whatever side e was on.
   * - Where |s| ≥ 2^-126, in a binade [2^k, 2^(k + 1)) with k ≥ -126, the float32 midpoints are the odd multiples of
   *   2^(k - 24), float64's grid is 2^(k - 52): s is one where its significand's 29 low bits (all in the low 32-bit
   *   word w) are 1 then 28 zeros, w mod 2^29 = 2^28.
   * - Below 2^-126 the midpoints sit lower in the significand: such lanes are flagged, except where s is exact, which
   *   covers every s below 2^-197: with z = ±0, s = x·y (exact: at most 48 bits); with z ≠ 0, write x·y = P·2^q (P an
   *   integer below 2^48, q ≥ -298 the sum of x's and y's last places): where |x·y| ≤ |z|/2, |e| ≥ |z|/2 ≥ 2^-150;
   *   else 2^(48 + q) > |x·y| > 2^-150, so q ≥ -197, and e, a multiple of 2^min(q, -149), is 0 or at least 2^-197
   *   in magnitude, and so is s (2^-197 is a float64 number). (Exact zeros stay off the exact step: flagging them sent
   *   every block of zero grads and zero state there.)
   * So a lane is risky only where w mod 2^29 = 2^28, or its high word h (sign, 11 exponent bits E, 20 significand bits)
   * has E in [826, 896] (2^-197 ≤ |s| < 2^-126). One instruction keys both, h·8 and w·8 (mod 2^32, i32x4.shl by 3),
   * as signed numbers, small where risky, so that the keys of all a body's fmas fold into one signed minimum:
   * - low word: w·8 = (w mod 2^29)·2^3 is -2^31, the least of all, exactly at a midpoint: risky below -2^31 + 1;
   * - high word: h·8 = (E mod 512)·2^23 + (h's significand bits)·2^3, below -127·2^23 as a signed number exactly
   *   where E mod 512 is in [256, 384], that is E in [768, 896] (E ≤ 1279 where finite, as |e| < 2^257): risky below
   *   -127·2^23. That flags [826, 896] and exact lanes from 2^-255 (slower only), and not 0 (E = 0), nor any E in
   *   [897, 1279] (keys from -127·2^23 up, or positive), nor ±∞ (E = 2047: -2^23); a NaN may flag its lane (slower).
   * With float16 storage no exact result lies below 2^-101 except 0 (`storage`): the high words are never risky (bound
   * -2^31, below every key).
   */
  private riskKey(sum: number): void {
    const { c } = this;
    const keys = (this.riskKeys ??= c.local(V128));
    c.get(sum).i32(3).simd(SIMD.i32x4Shl);
    if (this.keysStarted) c.get(keys).simd(SIMD.i32x4MinS);
    c.set(keys);
    this.keysStarted = true;
  }

  /** The bounds below which a lane's key in `riskKeys` is risky (see riskKey), as unsigned 32-bit patterns. */
  private riskBounds(): number {
    return this.i32Pairs(2 ** 31 + 1, this.storage === "float16" ? 2 ** 31 : 2 ** 32 - 127 * 2 ** 23);
  }

  /** float64 fma: Dekker, TwoSum, round-to-odd; zero operands and out-of-range lanes apart. */
  private fma64(x: Expr, y: Expr, z: Expr): void {
    const { c } = this;
    const [tx, ty, tz, uh, xh, xl, yh, yl, ul, th, tl, s, e, t, res, mask] = this.temps() as [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];
    const splitter = this.f64Splat(134217729); // 2^27 + 1
    const zero = this.zero();
    this.assign(tx, x);
    this.assign(ty, y);
    this.assign(tz, z);
    c.get(tx).get(ty).simd(SIMD.f64x2Mul).set(uh);
    // Veltkamp split: h = (S·a) - ((S·a) - a), l = a - h
    for (const [src, hi, lo] of [[tx, xh, xl], [ty, yh, yl]] as const) {
      c.get(splitter).get(src).simd(SIMD.f64x2Mul).tee(t).get(t).get(src).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Sub).set(hi);
      c.get(src).get(hi).simd(SIMD.f64x2Sub).set(lo);
    }
    // ul = xl·yl - (((uh - xh·yh) - xl·yh) - xh·yl)
    c.get(xl).get(yl).simd(SIMD.f64x2Mul);
    c.get(uh).get(xh).get(yh).simd(SIMD.f64x2Mul).simd(SIMD.f64x2Sub);
    c.get(xl).get(yh).simd(SIMD.f64x2Mul).simd(SIMD.f64x2Sub);
    c.get(xh).get(yl).simd(SIMD.f64x2Mul).simd(SIMD.f64x2Sub);
    c.simd(SIMD.f64x2Sub).set(ul);
    // TwoSum: th + tl = z + uh (t = uh's virtual part)
    c.get(tz).get(uh).simd(SIMD.f64x2Add).set(th);
    c.get(th).get(tz).simd(SIMD.f64x2Sub).set(t);
    c.get(tz).get(th).get(t).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Sub);
    c.get(uh).get(t).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Add).set(tl);
    // s = RO(tl + ul)
    c.get(tl).get(ul).simd(SIMD.f64x2Add).set(s);
    c.get(s).get(tl).simd(SIMD.f64x2Sub).set(t);
    c.get(tl).get(s).get(t).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Sub);
    c.get(ul).get(t).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Add).set(e);
    this.roundToOdd(s, e);
    // th + s; + 0 turns an exact cancellation's -0 into +0, as a rounded fma gives
    c.get(th).get(s).simd(SIMD.f64x2Add).get(zero).simd(SIMD.f64x2Add).set(res);
    // lanes with a zero operand: x·y + z is already the fma (no product to lose)
    c.get(tx).get(ty).simd(SIMD.f64x2Mul).get(tz).simd(SIMD.f64x2Add).get(res);
    c.get(tx).get(zero).simd(SIMD.f64x2Eq).get(ty).get(zero).simd(SIMD.f64x2Eq).simd(SIMD.or).tee(mask);
    c.simd(SIMD.bitselect).set(res);
    // the range where no error term underflows or overflows (spec/float/fma.ts)
    const below = (v: number, bound: number): void => void c.get(v).simd(SIMD.f64x2Abs).get(this.f64Splat(bound)).simd(SIMD.f64x2Lt);
    const above = (v: number, bound: number): void => void c.get(v).simd(SIMD.f64x2Abs).get(this.f64Splat(bound)).simd(SIMD.f64x2Gt);
    below(tx, 2 ** 500);
    below(ty, 2 ** 500);
    c.simd(SIMD.and);
    below(tz, 2 ** 1000);
    c.simd(SIMD.and);
    above(uh, 2 ** -900);
    c.simd(SIMD.and);
    c.get(tz).get(zero).simd(SIMD.f64x2Eq);
    above(tz, 2 ** -900);
    c.simd(SIMD.or).simd(SIMD.and);
    // unsafe = ¬safe ∧ ¬zeroOperand
    c.simd(SIMD.not).get(mask).simd(SIMD.andnot).tee(mask);
    c.simd(SIMD.anyTrue).op(OP.if, OP.void);
    for (const lane of [0, 1]) {
      c.get(mask).simd(SIMD.i64x2ExtractLane, lane).op(...OP.i64Ne0).op(OP.if, OP.void);
      c.get(res);
      for (const v of [tx, ty, tz]) c.get(v).simd(SIMD.f64x2ExtractLane, lane);
      c.call(EXACT_FMA64).simd(SIMD.f64x2ReplaceLane, lane).set(res);
      c.op(OP.end);
    }
    c.op(OP.end);
    c.get(res);
  }
}

const P = 0;
const G = 1;
const M = 2;
const V = 3;
const N = 4;

/**
 * Vectors a step function's main loop updates side by side, statement by statement (see stepFunction), per variant.
 * Each element's update is one long chain of dependent operations; the engine compiles the loop as written, with no
 * software pipelining, so independent chains side by side keep the processor busy while each waits on its latencies,
 * until the registers run out. Where the chains are short, one vector is fastest. Measured here (2-core x86-64 VM),
 * the raw step kernel on 4M numbers, each count's kernel timed in turn in one process, medians of 9 to 18 calls, ms:
 * - float32, no fma: 1 vector 6.5-6.8, 2: 7.6-7.7, 4: 9.2-9.7 (Node 20); fma by relaxed_madd: 5.8 / 7.9 / 6.8
 *   (Node 22), 5.4 / 5.4 / 5.5 (Node 24); emulated fma: 16.3-17.4 / 15.8-16.0 / 15.2-15.5 (16M: 66.8 / 63.8 / 65.0);
 * - float64, emulated fma: 102 / 85 / 82 (Node 20), 83 / 74 / 74 (Node 22);
 * - float16 in software: 2 vectors 46-48, 16: 168 (Node 22), 123-126 through NAdam on Node 20 (their compilers
 *   spill), 37 against 46 on Node 24;
 *   FP16 conversions (Node 24): 2: 23.0, 4: 19.1, 8: 15.3, 16: 14.5 (vectorized profile 29.6 / 24.7 / 21.8 / 23.8);
 * - bfloat16: 2: 15.4, 4: 17.9 (Node 20), 15.3 / 14.5 (Node 24).
 */
function groupsOf(variant: KernelVariant): number {
  if (variant.storage === "float16") return variant.fp16 === true ? 8 : 2;
  if (variant.storage === "bfloat16") return 2;
  return variant.fused && variant.fma === "emulated" ? 2 : 1;
}
/** Vectors side by side in a remainder function (past the last whole iteration of groupsOf's), and in the exact one. */
function smallGroupsOf(variant: KernelVariant): number {
  return variant.storage === undefined ? 1 : 2;
}

/** Where a step function hands work to the module's other functions (their indices), and how many vectors its loop updates side by side. */
interface StepShape {
  readonly groups: number;
  /** Where fmas are guarded (float32 lanes, emulated fma): the exact step, which an iteration with a risky lane calls on its numbers instead of storing; undefined in that exact one. */
  readonly exactIndex?: number;
  /** The step function (of fewer groups) that the numbers past the last whole iteration go to; else they are loaded lane by lane here. */
  readonly remainderIndex?: number;
}

/**
 * The step kernel's function for a variant. Where fmas are guarded (float32 lanes, emulated fma), the fast one's
 * iterations with a risky lane call the exact one (every fma rounded to odd) on their numbers instead of storing. (A
 * redo inline would hold the fast loop's registers for code that rarely runs.)
 */
function stepFunction(variant: KernelVariant, { groups, exactIndex, remainderIndex }: StepShape): Code {
  const c = new Code([I32, I32, I32, I32, I32, ...KERNEL_SCALARS.map((): ValType => F64)]);
  const vc = new VectorCode(c, variant.lane, variant.fma);
  vc.storage = variant.storage;
  vc.fp16 = variant.storage === "float16" && variant.fp16 === true;
  const { ops } = vc;
  const i = c.local(I32);
  const vectorEnd = c.local(I32);
  const { storage } = variant;
  // `groups` vectors an iteration (groupsOf), interleaved statement by statement; 16-bit tensors: two vectors of
  // float32 lanes from each 128-bit load of 8 numbers per array.
  const locals = Array.from({ length: groups }, () => ({ p: c.local(V128), g: c.local(V128), m: c.local(V128), v: c.local(V128), d: c.local(V128) }));
  const scalarLocals = KERNEL_SCALARS.map(() => c.local(V128));
  const S = Object.fromEntries(KERNEL_SCALARS.map((name, k) => [name, vc.at(scalarLocals[k]!)])) as Record<KernelScalar, Expr>;
  KERNEL_SCALARS.forEach((name, k) => vc.wide.set(S[name], { key: name, emit: () => void c.get(5 + k).simd(SIMD.f64x2Splat) })); // exact: the arguments arrive rounded to float32
  const { at, add, sub, mul, div, sqrt, neg, fma } = vc;

  // `out`: a kernel's float32 result rounded to a 16-bit tensor's dtype (nothing for float32 / float64 tensors).
  const out = (e: Expr): Expr => (storage === undefined ? e : vc.round16(storage, e));
  // `outBounded`: `out` for a result below 65520 in magnitude when finite (round16's `bounded`), where boundedScalars
  // shows it: each operand is a float16 number (at most 65504) or not finite (then so is the result), and
  // - lerp's m + w·(g - m), g - (g - m)·(1 - w), or as an fma: each within [min(g, m), max(g, m)] exactly, and rounded
  //   in float32 at most 65504 + 131008·(2^-23 + 2^-48) + 65504.02·2^-24 < 65505;
  // - alpha·p, v·beta2: a factor of magnitude at most 1, so at most 65504, and rounding to float32 keeps that;
  // - the denominator plus eps: at most 65504 + 8 (rounded, still).
  const outBounded = (e: Expr): Expr => (storage === "float16" && variant.boundedScalars === true ? vc.round16(storage, e, true) : out(e));
  const fusedHere = variant.fused && variant.scalarLoop !== true;

  // One vector's update, as statements (each sets one local): the typed-array kernel's sequence, op for op.
  const body = ({ p, g, m, v, d }: (typeof locals)[number]): (() => void)[] => {
    const statements: (() => void)[] = [];
    const assignTo = (local: number, e: Expr): void => void statements.push(() => vc.assign(local, e));
    if (variant.maximize) assignTo(g, neg(at(g)));
    if (variant.weightDecay === "decoupled") assignTo(p, out(mul(at(p), S.decay)));
    // add(alpha): the vectorized loop's float32 fma; elsewhere the product is a tensor of the dtype first
    // (float16 param times float16 alpha: 11-bit significands, a product of at most 22 bits from 2^-48 to 2^32, exact in
    // float32, so that the fma is that product added: no emulation. bfloat16's products can leave float32's range, but
    // are short: fmaShort.)
    const alphaTerm = (): Expr => (storage === "float16" ? add(mul(at(p), S.alpha), at(g)) : storage === "bfloat16" ? vc.fmaShort(at(p), S.alpha, at(g)) : fma(at(p), S.alpha, at(g)));
    if (variant.weightDecay === "l2") assignTo(g, out(fusedHere ? alphaTerm() : add(at(g), outBounded(mul(S.alpha, at(p))))));
    // exp_avg.lerp_(grad, 1 - beta1)
    assignTo(d, sub(at(g), at(m)));
    if (variant.smallWeight) assignTo(m, outBounded(variant.fused ? fma(S.w, at(d), at(m)) : add(at(m), mul(S.w, at(d)))));
    else assignTo(m, outBounded(variant.fused ? fma(S.wMinusOne, at(d), at(g)) : sub(at(g), mul(at(d), S.oneMinusW))));
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    assignTo(v, outBounded(mul(at(v), S.beta2)));
    assignTo(d, mul(S.oneMinusBeta2, at(g)));
    assignTo(v, out(variant.fused ? fma(at(d), at(g), at(v)) : add(at(v), mul(at(d), at(g)))));
    // denominator
    // (a float16 number's square root is 0, ±∞, NaN or in float16's normal range: a cheaper rounding)
    const outSqrt = (e: Expr): Expr => (storage === "float16" ? vc.round16Normal(e) : out(e));
    assignTo(d, variant.foreach ? out(div(outSqrt(sqrt(at(v))), S.bcSqrt)) : outSqrt(sqrt(out(div(at(v), S.bc2)))));
    assignTo(d, outBounded(add(at(d), S.eps)));
    // two addcdiv_; the differentiable branch's scaled terms are new tensors of the dtype first
    const term = (x: number, scale: Expr): Expr => (variant.differentiable === true ? out(mul(at(x), scale)) : mul(scale, at(x)));
    assignTo(p, out(add(at(p), div(term(g, S.step1), at(d)))));
    assignTo(p, out(add(at(p), div(term(m, S.step2), at(d)))));
    return statements;
  };
  /** Every group's update, statement k of each group before statement k + 1 of any. */
  const interleaved = (): void => {
    const lists = locals.map(body);
    for (let k = 0; k < lists[0]!.length; k++) for (const list of lists) list[k]!();
  };

  const inputs = locals.flatMap(({ p, g, m, v }) => [p, g, m, v]);
  /** The update, then `commit` (the stores); where guarded, a risky lane's numbers go to the exact function, `count` of them from i. */
  const element = (commit: () => void, count: () => void): void => {
    if (exactIndex === undefined) return void (interleaved(), commit());
    vc.guarded(interleaved, commit, () => {
      for (const array of arrays) address(array);
      count();
      KERNEL_SCALARS.forEach((_, k) => c.get(5 + k));
      c.call(exactIndex);
    });
  };
  const arrays = [P, G, M, V] as const;
  const written = [P, M, V] as const;
  const localOf = (group: number, array: number): number => {
    const { p, g, m, v } = locals[group]!;
    return [p, g, m, v][array]!;
  };
  const size = storage === undefined ? ops.size : 2;
  const align = storage === undefined ? ops.alignLog2 : 1;
  /** Numbers an iteration of the main loop steps. */
  const step = ops.lanes * groups;
  const address = (ptr: number): void => void c.get(ptr).get(i).op(OP.i32Add);
  const loadVectors = (array: number): void => {
    if (storage !== undefined) {
      for (let pair = 0; 2 * pair < groups; pair++) vc.loadDecoded8(storage, () => address(array), localOf(2 * pair, array), localOf(2 * pair + 1, array), 16 * pair);
      return;
    }
    for (let group = 0; group < groups; group++) {
      address(array);
      c.simd(SIMD.load, ...Code.memarg(align, 16 * group)).set(localOf(group, array));
      if (variant.lane === "float32") vc.inMemory.set(localOf(group, array), { address: () => address(array), offset: 16 * group });
    }
  };
  const storeVectors = (array: number): void => {
    if (storage !== undefined) {
      for (let pair = 0; 2 * pair < groups; pair++) vc.storeEncoded8(storage, () => address(array), localOf(2 * pair, array), localOf(2 * pair + 1, array), 16 * pair);
      return;
    }
    for (let group = 0; group < groups; group++) {
      address(array);
      c.get(localOf(group, array)).simd(SIMD.store, ...Code.memarg(align, 16 * group));
    }
  };
  // main loop over whole iterations
  c.op(OP.block, OP.void, OP.loop, OP.void);
  c.get(i).get(vectorEnd).op(OP.i32GeU).op(OP.brIf, 1);
  for (const array of arrays) loadVectors(array);
  element(() => written.forEach(storeVectors), () => void c.i32(step));
  vc.forgetSources(); // (the tail's inputs are lanes loaded one by one, the memory past n not theirs)
  c.get(i).i32(step * size).op(OP.i32Add).set(i).op(OP.br, 0, OP.end, OP.end);
  const remaining = (): void => void c.get(N).i32(step - 1).op(OP.i32And);
  if (remainderIndex !== undefined) {
    // the last n mod step numbers to the function of fewer groups
    remaining();
    c.op(OP.if, OP.void);
    for (const array of arrays) address(array);
    remaining();
    KERNEL_SCALARS.forEach((_, k) => c.get(5 + k));
    c.call(remainderIndex);
    c.op(OP.end);
    return finish();
  }
  // the last n mod step numbers: loaded one by one into zeroed vectors (zeros keep the padding lanes off the slow path:
  // every fma of zeros gives an exact zero, which the risk tests let through)
  const laneLoad = storage === undefined ? ops.load : OP.i32Load16U;
  const laneReplace = storage === undefined ? ops.replace : SIMD.i32x4ReplaceLane;
  remaining();
  c.op(OP.if, OP.void);
  for (const local of inputs) c.simd(SIMD.const, ...V128_ZERO).set(local);
  for (let lane = 0; lane < step - 1; lane++) {
    remaining();
    c.i32(lane).op(0x4b /* i32.gt_u */, OP.if, OP.void);
    for (const array of arrays) {
      const local = localOf(Math.floor(lane / ops.lanes), array);
      c.get(local);
      address(array);
      c.op(laneLoad, ...Code.memarg(align, lane * size)).simd(laneReplace, lane % ops.lanes).set(local);
    }
    c.op(OP.end);
  }
  if (storage !== undefined) {
    for (const local of inputs) {
      c.get(local).i32(16).simd(SIMD.i32x4Shl);
      vc.decode16(storage);
      c.set(local);
    }
  }
  const encoded = vc.tempOf("encoded");
  const storeLanes = (): void => {
    for (const array of written) {
      for (let group = 0; group < groups; group++) {
        const local = localOf(group, array);
        if (storage !== undefined) {
          c.get(local);
          vc.encode16(storage);
          c.set(encoded);
        }
        for (let lane = group * ops.lanes; lane < Math.min((group + 1) * ops.lanes, step - 1); lane++) {
          remaining();
          c.i32(lane).op(0x4b, OP.if, OP.void);
          address(array);
          if (storage === undefined) c.get(local).simd(ops.extract, lane % ops.lanes).op(ops.store, ...Code.memarg(align, lane * size));
          else c.get(encoded).simd(SIMD.i32x4ExtractLane, lane % ops.lanes).op(OP.i32Store16, ...Code.memarg(align, lane * size));
          c.op(OP.end);
        }
      }
    }
  };
  element(storeLanes, remaining);
  c.op(OP.end);
  return finish();

  // before all of it: the scalars splatted (float32 lanes: demoted, exactly, as they arrive rounded), the constants, the loop's end
  function finish(): Code {
    const loop = c.bytes.splice(0);
    KERNEL_SCALARS.forEach((_, k) => {
      c.get(5 + k);
      if (variant.lane === "float32") c.op(OP.f32DemoteF64);
      c.simd(ops.splat).set(scalarLocals[k]!);
    });
    c.get(N).i32(-step).op(OP.i32And).i32(size).op(OP.i32Mul).set(vectorEnd);
    vc.emitPrologue();
    return c.append(loop);
  }
}

/** The steps function: a loop calling the module's step (function index `step`) once per list entry. */
function stepsFunction(step: number): Code {
  const c = new Code([I32, I32, I32]);
  const [LIST, COUNT, SCALARS] = [0, 1, 2];
  // indices to byte offsets
  c.get(LIST).i32(2).op(OP.i32Shl).set(LIST);
  c.get(SCALARS).i32(3).op(OP.i32Shl).set(SCALARS);
  const scalars = KERNEL_SCALARS.map(() => c.local(F64));
  scalars.forEach((local, k) => c.get(SCALARS).op(OP.f64Load, ...Code.memarg(3, 8 * k)).set(local));
  c.op(OP.block, OP.void, OP.loop, OP.void);
  c.get(COUNT).op(OP.i32Eqz).op(OP.brIf, 1);
  for (let word = 0; word < 5; word++) c.get(LIST).op(OP.i32Load, ...Code.memarg(2, 4 * word));
  for (const local of scalars) c.get(local);
  c.call(step);
  c.get(LIST).i32(STEPS_ENTRY_BYTES).op(OP.i32Add).set(LIST);
  c.get(COUNT).i32(1).op(OP.i32Sub).set(COUNT);
  c.op(OP.br, 0, OP.end, OP.end);
  return c;
}

/** fma(x, y, z, out, n): out = x·y + z elementwise over n lane-type numbers (n a multiple of the lanes); for tests. */
function fmaFunction(lane: Lane, strategy: FmaStrategy): Code {
  const c = new Code([I32, I32, I32, I32, I32]);
  const vc = new VectorCode(c, lane, strategy);
  const { alignLog2 } = vc.ops;
  const i = c.local(I32);
  const end = c.local(I32);
  const load = (ptr: number): (() => void) => () => void c.get(ptr).get(i).op(OP.i32Add).simd(SIMD.load, ...Code.memarg(alignLog2));
  c.op(OP.block, OP.void, OP.loop, OP.void);
  c.get(i).get(end).op(OP.i32GeU).op(OP.brIf, 1);
  const fmaStored = (): void => {
    c.get(3).get(i).op(OP.i32Add);
    vc.fma(load(0), load(1), load(2))();
    c.simd(SIMD.store, ...Code.memarg(alignLog2));
  };
  vc.guarded(fmaStored, () => {}, fmaStored);
  c.get(i).i32(16).op(OP.i32Add).set(i).op(OP.br, 0, OP.end, OP.end);
  const loop = c.bytes.splice(0);
  c.get(4).i32(vc.ops.size).op(OP.i32Mul).set(end);
  vc.emitPrologue();
  return c.append(loop);
}

/**
 * The 16-bit conversions the step kernels use, over arrays (for tests): round16(x, out, n) rounds n float32 numbers
 * (n a multiple of 4) to the format, keeping them float32; decode16(bits, out, n) and encode16(x, bits, n) convert n
 * numbers (n a multiple of 8) between the format's bits and float32, 8 at a time as the kernels load and store them;
 * sqrtRound16(x, out, n): the square roots of n float32 numbers, rounded to the format as the kernels round them.
 */
function conversionFunctions(format: "float16" | "bfloat16", fp16: boolean): ModuleSpec["functions"] {
  const loop = (width: number, body: (c: Code, vc: VectorCode, at: (ptr: number, scale: number, offset?: number) => () => void) => void): Code => {
    const c = new Code([I32, I32, I32]);
    const vc = new VectorCode(c, "float32", "emulated");
    vc.fp16 = fp16 && format === "float16";
    const i = c.local(I32);
    // i counts numbers; an array's address is ptr + i·scale (+ offset bytes)
    const at = (ptr: number, scale: number, offset = 0) => () => void c.get(ptr).get(i).i32(scale).op(OP.i32Mul).op(OP.i32Add).i32(offset).op(OP.i32Add);
    c.op(OP.block, OP.void, OP.loop, OP.void);
    c.get(i).get(2).op(OP.i32GeU).op(OP.brIf, 1);
    body(c, vc, at);
    c.get(i).i32(width).op(OP.i32Add).set(i).op(OP.br, 0, OP.end, OP.end);
    const code = c.bytes.splice(0);
    vc.emitPrologue();
    return c.append(code);
  };
  const round16 = loop(4, (c, vc, at) => {
    at(1, 4)();
    vc.round16(format, () => void (at(0, 4)(), c.simd(SIMD.load, ...Code.memarg(2))))();
    c.simd(SIMD.store, ...Code.memarg(2));
  });
  const decode16 = loop(8, (c, vc, at) => {
    const [low, high] = [vc.tempOf("low"), vc.tempOf("high")];
    vc.loadDecoded8(format, at(0, 2), low, high);
    at(1, 4)();
    c.get(low).simd(SIMD.store, ...Code.memarg(2));
    at(1, 4, 16)();
    c.get(high).simd(SIMD.store, ...Code.memarg(2));
  });
  const encode16 = loop(8, (c, vc, at) => {
    const [low, high] = [vc.tempOf("low"), vc.tempOf("high")];
    at(0, 4)();
    c.simd(SIMD.load, ...Code.memarg(2)).set(low);
    at(0, 4, 16)();
    c.simd(SIMD.load, ...Code.memarg(2)).set(high);
    vc.storeEncoded8(format, at(1, 2), low, high);
  });
  // float16 only: the square root rounded as the kernels round it (round16Normal)
  const sqrtRound16 = loop(4, (c, vc, at) => {
    at(1, 4)();
    const x = (): void => void (at(0, 4)(), c.simd(SIMD.load, ...Code.memarg(2)));
    (format === "float16" ? vc.round16Normal(vc.sqrt(x)) : vc.round16(format, vc.sqrt(x)))();
    c.simd(SIMD.store, ...Code.memarg(2));
  });
  return [{ name: "round16", code: round16 }, { name: "decode16", code: decode16 }, { name: "encode16", code: encode16 }, { name: "sqrtRound16", code: sqrtRound16 }];
}

/** Limits of the imported memory (pages of 64 KiB): a shared memory declares its maximum. */
export interface MemoryLimits {
  readonly maximum: number;
}

function moduleSpec(limits: MemoryLimits, functions: ModuleSpec["functions"]): ModuleSpec {
  return { memory: { module: "env", name: "memory", minimum: 1, maximum: limits.maximum, shared: true }, imports: [EXACT_FMA64_IMPORT], functions };
}

/** The bytes of a module exporting `step` and `steps` for one variant. */
export function stepModuleBytes(variant: KernelVariant, limits: MemoryLimits): Uint8Array<ArrayBuffer> {
  // function indices after the one import: step 1, steps 2, then where needed the remainder's step (fewer groups) and
  // the exact step (where fmas are guarded: of fewer groups too, as it runs rarely)
  const guards = variant.fused && variant.lane === "float32" && variant.fma === "emulated";
  const [groups, small] = [groupsOf(variant), smallGroupsOf(variant)];
  const remainderIndex = groups > small ? 3 : undefined;
  const exactIndex = guards ? (remainderIndex === undefined ? 3 : 4) : undefined;
  const functions = [
    { name: "step", code: stepFunction(variant, { groups, exactIndex, remainderIndex }) },
    { name: "steps", code: stepsFunction(1) },
    ...(remainderIndex === undefined ? [] : [{ name: "stepRemainder", code: stepFunction(variant, { groups: small, exactIndex }) }]),
    ...(exactIndex === undefined ? [] : [{ name: "stepExact", code: stepFunction(variant, { groups: small }) }]),
  ];
  return encodeModule(moduleSpec(limits, functions));
}

/** The bytes of a module exporting `fma` over arrays (tests and the relaxed-madd probe). */
export function fmaModuleBytes(lane: Lane, strategy: FmaStrategy, limits: MemoryLimits): Uint8Array<ArrayBuffer> {
  return encodeModule(moduleSpec(limits, [{ name: "fma", code: fmaFunction(lane, strategy) }]));
}

/** The bytes of a module exporting a 16-bit format's conversions over arrays (tests, and the FP16 probe with `fp16`). */
export function conversionModuleBytes(format: "float16" | "bfloat16", limits: MemoryLimits, fp16 = false): Uint8Array<ArrayBuffer> {
  return encodeModule(moduleSpec(limits, conversionFunctions(format, fp16)));
}
