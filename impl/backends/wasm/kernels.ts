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
 * in order; list is the byte offset of count (p, g, m, v, n) int32 quintuples
 * (STEPS_ENTRY_BYTES each), scalars the byte offset of the float64 scalar
 * arguments. One call from JavaScript for a whole group of small tensors, with
 * no float64 arguments (JavaScript boxes each one it passes).
 */
export type StepsKernel = (list: number, count: number, scalars: number) => void;
export const STEPS_ENTRY_BYTES = 20;

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
const SHUFFLE_JOIN_LOWS = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
/** The low 32-bit words of two f64x2 vectors' four lanes, in lane order. */
const SHUFFLE_LOW_WORDS = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];

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

  at = (local: number): Expr => () => void this.c.get(local);
  assign(local: number, e: Expr): void {
    e();
    this.c.set(local);
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
  private i64One(): number {
    return this.i64Splat(1);
  }
  private zero(): number {
    return this.constant("zero", () => this.c.simd(SIMD.const, ...V128_ZERO));
  }

  /** Code that must run before the loop: the constants the kernel used. Call after generating the body. */
  prologueCode(): number[] {
    const saved = this.c.bytes.splice(0);
    for (const emit of this.prologue) emit();
    const prologue = this.c.bytes.splice(0);
    this.c.bytes.push(...saved);
    return prologue;
  }

  private temps(): number[] {
    return (this.fmaTemps ??= Array.from({ length: 16 }, () => this.c.local(V128)));
  }

  /**
   * Round float32 lanes to a 16-bit format, keeping them float32 (ties to even).
   * bfloat16: on the bits. float16: |x| + c - c with c = 1.5·2^(max(e, -14) + 13),
   * whose last place is float16's quantum at x's exponent e; ±65520 and beyond
   * become infinities; the sign is put back last (so -0 and tiny negatives stay negative).
   */
  round16 = (format: "float16" | "bfloat16", x: Expr): Expr => () => {
    const { c } = this;
    const t = (this.round16Temp ??= c.local(V128));
    x();
    if (format === "bfloat16") {
      c.tee(t).get(t).i32(16).simd(SIMD.i32x4ShrU).get(this.i32Splat(1)).simd(SIMD.and).simd(SIMD.i32x4Add);
      c.get(this.i32Splat(0x7fff)).simd(SIMD.i32x4Add).get(this.i32Splat(0xffff0000 | 0)).simd(SIMD.and);
      return;
    }
    const [a, k] = (this.round16Locals ??= [c.local(V128), c.local(V128)]);
    c.tee(t).simd(SIMD.f32x4Abs).tee(a);
    // c = 1.5·2^(max(e, -14) + 13) from a's exponent bits
    c.get(this.i32Splat(0x7f800000)).simd(SIMD.and).get(this.i32Splat(0x38800000)).simd(SIMD.i32x4MaxS);
    c.get(this.i32Splat(13 << 23)).simd(SIMD.i32x4Add).get(this.i32Splat(0x00400000)).simd(SIMD.or).set(k);
    c.get(this.f32Splat(Infinity));
    c.get(a).get(k).simd(SIMD.f32x4Add).get(k).simd(SIMD.f32x4Sub);
    c.get(a).get(this.f32Splat(65520)).simd(SIMD.f32x4Ge).simd(SIMD.bitselect);
    c.get(t).get(this.i32Splat(0x80000000 | 0)).simd(SIMD.and).simd(SIMD.or);
  };
  private round16Temp: number | undefined;
  private round16Locals: [number, number] | undefined;

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
   * float32 lanes: a local that each fma in `fast` mode ORs its risky lanes
   * into (see fma32), or undefined for `exact` mode, which rounds every fma to
   * odd. The kernel runs an element's whole update fast and redoes it exact
   * when any lane was risky.
   */
  risk: number | undefined;
  private riskLocal: number | undefined;
  private readonly saved: number[] = [];

  /**
   * Emit `body` (code with fmas) so that its fmas are exact: on float32 lanes
   * with emulated fma, once in fast mode and once more in exact mode, run only
   * when a lane was risky, after restoring `inputs` (the locals `body`
   * overwrites); otherwise once.
   */
  guarded(body: () => void, inputs: readonly number[]): void {
    const { c } = this;
    if (this.lane !== "float32" || this.strategy !== "emulated") return body();
    const risk = (this.riskLocal ??= c.local(V128));
    const saved = inputs.map((_, k) => (this.saved[k] ??= c.local(V128)));
    inputs.forEach((local, k) => c.get(local).set(saved[k]!));
    c.get(this.zero()).set(risk);
    this.risk = risk;
    body();
    this.risk = undefined;
    c.get(risk).simd(SIMD.anyTrue).op(OP.if, OP.void);
    inputs.forEach((local, k) => c.get(saved[k]!).set(local));
    body();
    c.op(OP.end);
  }

  /**
   * float32 fma, two lanes at a time in float64, where x·y is exact and
   * x·y + z is rounded once; demoting that sum rounds a second time, which
   * matters only when the float64 sum is a float32 midpoint (its 29 low
   * significand bits 1 then 28 zeros) or lies below float32's normal range
   * (where the midpoints sit lower). Fast mode flags those lanes in `risk`;
   * exact mode makes the float64 sum round-to-odd (TwoSum's error decides the
   * last bit), which one demotion then rounds correctly: 53 ≥ 24 + 2 (Boldo &
   * Melquiond 2008).
   */
  private fma32(x: Expr, y: Expr, z: Expr): void {
    const { c } = this;
    const [tx, ty, tz, a, b, zz, prod, zv, err, lo, hi, res] = this.temps() as [number, number, number, number, number, number, number, number, number, number, number, number];
    // A host scalar's float64 form is a constant (no promotion per element); other operands are promoted half by half.
    const operands = ([[x, tx, a], [y, ty, b], [z, tz, zz]] as const).map(([e, t, to]) => {
      const wide = this.wide.get(e);
      if (wide === undefined) this.assign(t, e);
      return { t, to, wide: wide === undefined ? undefined : this.constant(`wide ${wide.key}`, wide.emit) };
    });
    const [wa, wb, wz] = operands.map((o) => o.wide ?? o.to) as [number, number, number];
    const promoteHalf = (half: 0 | 1): void => {
      for (const { t, to, wide } of operands) {
        if (wide !== undefined) continue;
        c.get(t);
        if (half === 1) c.get(t).simd(SIMD.shuffle, ...SHUFFLE_HIGH_PAIR);
        c.simd(SIMD.f64x2PromoteLowF32x4).set(to);
      }
    };
    const join = (): void => void c.get(lo).simd(SIMD.f32x4DemoteF64x2Zero).get(hi).simd(SIMD.f32x4DemoteF64x2Zero).simd(SIMD.shuffle, ...SHUFFLE_JOIN_LOWS);
    const { risk } = this;
    for (const [half, result] of [[0, lo], [1, hi]] as const) {
      promoteHalf(half);
      c.get(wa).get(wb).simd(SIMD.f64x2Mul).set(prod); // exact
      c.get(prod).get(wz).simd(SIMD.f64x2Add).set(result);
      if (risk !== undefined) continue;
      // TwoSum: err = (prod - (sum - zv)) + (z - zv), zv = sum - prod
      c.get(result).get(prod).simd(SIMD.f64x2Sub).set(zv);
      c.get(prod).get(result).get(zv).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Sub);
      c.get(wz).get(zv).simd(SIMD.f64x2Sub).simd(SIMD.f64x2Add).set(err);
      this.roundToOdd(result, err);
    }
    join();
    if (risk === undefined) return;
    c.tee(res);
    // the risky lanes: a result at or below the smallest normal (as a sum below it rounds to), or a float64 sum on a
    // float32 midpoint (its low 29 bits, all in the low 32-bit word, are 1 then zeros)
    const smallestNormal = this.constant("f32 2^-126", () => this.c.f64(2 ** -126).op(OP.f32DemoteF64).simd(SIMD.f32x4Splat));
    c.simd(SIMD.f32x4Abs).get(smallestNormal).simd(SIMD.f32x4Le);
    c.get(lo).get(hi).simd(SIMD.shuffle, ...SHUFFLE_LOW_WORDS).get(this.i32Splat(0x1fffffff)).simd(SIMD.and).get(this.i32Splat(0x10000000)).simd(SIMD.i32x4Eq);
    c.simd(SIMD.or).get(risk).simd(SIMD.or).set(risk);
    c.get(res);
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

/** The step kernel's function for a variant. */
function stepFunction(variant: KernelVariant): Code {
  const c = new Code([I32, I32, I32, I32, I32, ...KERNEL_SCALARS.map((): ValType => F64)]);
  const vc = new VectorCode(c, variant.lane, variant.fma);
  const { ops } = vc;
  const i = c.local(I32);
  const vectorEnd = c.local(I32);
  const [p, g, m, v, d] = [c.local(V128), c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
  const scalarLocals = KERNEL_SCALARS.map(() => c.local(V128));
  const S = Object.fromEntries(KERNEL_SCALARS.map((name, k) => [name, vc.at(scalarLocals[k]!)])) as Record<KernelScalar, Expr>;
  KERNEL_SCALARS.forEach((name, k) => vc.wide.set(S[name], { key: name, emit: () => void c.get(5 + k).simd(SIMD.f64x2Splat) })); // exact: the arguments arrive rounded to float32
  const { at, assign, add, sub, mul, div, sqrt, neg, fma } = vc;
  const assignTo = (local: number, e: Expr): void => assign.call(vc, local, e);

  // `out`: a kernel's float32 result rounded to a 16-bit tensor's dtype (nothing for float32 / float64 tensors).
  const { storage } = variant;
  const out = (e: Expr): Expr => (storage === undefined ? e : vc.round16(storage, e));
  const fusedHere = variant.fused && variant.scalarLoop !== true;

  // One element's update: the typed-array kernel's sequence, op for op.
  const body = (): void => {
    if (variant.maximize) assignTo(g, neg(at(g)));
    if (variant.weightDecay === "decoupled") assignTo(p, out(mul(at(p), S.decay)));
    // add(alpha): the vectorized loop's float32 fma; elsewhere the product is a tensor of the dtype first
    if (variant.weightDecay === "l2") assignTo(g, out(fusedHere ? fma(at(p), S.alpha, at(g)) : add(at(g), out(mul(S.alpha, at(p))))));
    // exp_avg.lerp_(grad, 1 - beta1)
    assignTo(d, sub(at(g), at(m)));
    if (variant.smallWeight) assignTo(m, out(variant.fused ? fma(S.w, at(d), at(m)) : add(at(m), mul(S.w, at(d)))));
    else assignTo(m, out(variant.fused ? fma(S.wMinusOne, at(d), at(g)) : sub(at(g), mul(at(d), S.oneMinusW))));
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    assignTo(v, out(mul(at(v), S.beta2)));
    assignTo(d, mul(S.oneMinusBeta2, at(g)));
    assignTo(v, out(variant.fused ? fma(at(d), at(g), at(v)) : add(at(v), mul(at(d), at(g)))));
    // denominator
    assignTo(d, out(variant.foreach ? div(out(sqrt(at(v))), S.bcSqrt) : sqrt(out(div(at(v), S.bc2)))));
    assignTo(d, out(add(at(d), S.eps)));
    // two addcdiv_; the differentiable branch's scaled terms are new tensors of the dtype first
    const term = (x: number, scale: Expr): Expr => (variant.differentiable === true ? out(mul(at(x), scale)) : mul(scale, at(x)));
    assignTo(p, out(add(at(p), div(term(g, S.step1), at(d)))));
    assignTo(p, out(add(at(p), div(term(m, S.step2), at(d)))));
  };

  const element = (): void => (variant.fused ? vc.guarded(body, [p, g, m, v]) : body());
  const arrays = [[P, p], [G, g], [M, m], [V, v]] as const;
  const written = [[P, p], [M, m], [V, v]] as const;
  const size = storage === undefined ? ops.size : 2;
  const align = storage === undefined ? ops.alignLog2 : 1;
  const raw = c.local(V128);
  const address = (ptr: number): void => void c.get(ptr).get(i).op(OP.i32Add);
  /** 16-bit bits (i32x4, on the stack) to float32 lanes. */
  const decode = (): void => {
    if (storage === "bfloat16") return void c.i32(16).simd(SIMD.i32x4Shl);
    // float16, with no float32 subnormal on the way (each costs a slow microcode assist, and NAdam's exp_avg_sq is often a
    // float16 subnormal): a subnormal's (or zero's) integer mantissa times 2^-24, else (bits & 0x7fff) << 13 with the
    // exponent rebiased by 127 - 15; infinities and NaN to exponent 255; the sign
    const em = vc.tempOf("decode em");
    c.tee(raw).get(vc.i32Splat(0x7fff)).simd(SIMD.and).tee(em).simd(SIMD.f32x4ConvertI32x4S).get(vc.f32Splat(2 ** -24)).simd(SIMD.f32x4Mul);
    c.get(em).i32(13).simd(SIMD.i32x4Shl).get(vc.i32Splat(112 << 23)).simd(SIMD.i32x4Add);
    c.get(em).get(vc.i32Splat(0x0400)).simd(SIMD.i32x4LtS).simd(SIMD.bitselect);
    c.get(em).get(vc.i32Splat(0x7bff)).simd(SIMD.i32x4GtS).get(vc.i32Splat(0x7f800000)).simd(SIMD.and).simd(SIMD.or);
    c.get(raw).get(vc.i32Splat(0x8000)).simd(SIMD.and).i32(16).simd(SIMD.i32x4Shl).simd(SIMD.or);
  };
  /** float32 lanes already rounded to the 16-bit format (on the stack) to their bits, as i32x4. */
  const encode = (): void => {
    // NaN: a quiet NaN of the same sign, as tensor/half.ts stores it
    const nan = vc.tempOf("encode nan");
    c.tee(raw).get(raw).simd(SIMD.f32x4Ne).set(nan);
    if (storage === "bfloat16") {
      c.get(raw).i32(16).simd(SIMD.i32x4ShrU).get(nan).get(vc.i32Splat(0x40)).simd(SIMD.and).simd(SIMD.or);
      return;
    }
    // float16, again with no float32 subnormal: below 2^-14, |x|·2^24 is the subnormal's integer mantissa; above, |x|'s bits with
    // the exponent rebiased by 15 - 127, >> 13 (infinity: capped at 0x7c00); NaN apart; then the sign
    const magnitude = vc.tempOf("encode magnitude");
    c.get(vc.i32Splat(0x7e00));
    c.get(raw).simd(SIMD.f32x4Abs).tee(magnitude).get(vc.f32Splat(2 ** 24)).simd(SIMD.f32x4Mul).simd(SIMD.i32x4TruncSatF32x4S);
    c.get(magnitude).get(vc.i32Splat(112 << 23)).simd(SIMD.i32x4Sub).i32(13).simd(SIMD.i32x4ShrU).get(vc.i32Splat(0x7c00)).simd(SIMD.i32x4MinU);
    c.get(magnitude).get(vc.f32Splat(2 ** -14)).simd(SIMD.f32x4Lt).simd(SIMD.bitselect);
    c.get(nan).simd(SIMD.bitselect);
    c.get(raw).i32(16).simd(SIMD.i32x4ShrU).get(vc.i32Splat(0x8000)).simd(SIMD.and).simd(SIMD.or);
  };
  const loadVector = (ptr: number, local: number): void => {
    address(ptr);
    if (storage === undefined) return void c.simd(SIMD.load, ...Code.memarg(align)).set(local);
    c.simd(SIMD.load16x4U, ...Code.memarg(align));
    decode();
    c.set(local);
  };
  const storeVector = (ptr: number, local: number): void => {
    address(ptr);
    if (storage === undefined) return void c.get(local).simd(SIMD.store, ...Code.memarg(align));
    c.get(local);
    encode();
    c.tee(raw).get(raw).simd(SIMD.i16x8NarrowI32x4U).simd(SIMD.store64Lane, ...Code.memarg(align), 0);
  };
  // main loop over whole vectors
  c.op(OP.block, OP.void, OP.loop, OP.void);
  c.get(i).get(vectorEnd).op(OP.i32GeU).op(OP.brIf, 1);
  for (const [ptr, local] of arrays) loadVector(ptr, local);
  element();
  for (const [ptr, local] of written) storeVector(ptr, local);
  c.get(i).i32(ops.lanes * size).op(OP.i32Add).set(i).op(OP.br, 0, OP.end, OP.end);
  // the last n mod lanes numbers: loaded lane by lane into zeroed vectors (zeros keep the padding lanes off the slow path)
  const remaining = (): void => void c.get(N).i32(ops.lanes - 1).op(OP.i32And);
  const laneLoad = storage === undefined ? ops.load : OP.i32Load16U;
  const laneReplace = storage === undefined ? ops.replace : SIMD.i32x4ReplaceLane;
  remaining();
  c.op(OP.if, OP.void);
  for (const [, local] of arrays) c.simd(SIMD.const, ...V128_ZERO).set(local);
  for (let lane = 0; lane < ops.lanes - 1; lane++) {
    remaining();
    c.i32(lane).op(0x4b /* i32.gt_u */, OP.if, OP.void);
    for (const [ptr, local] of arrays) {
      c.get(local);
      address(ptr);
      c.op(laneLoad, ...Code.memarg(align, lane * size)).simd(laneReplace, lane).set(local);
    }
    c.op(OP.end);
  }
  if (storage !== undefined) {
    for (const [, local] of arrays) {
      c.get(local);
      decode();
      c.set(local);
    }
  }
  element();
  const encoded = vc.tempOf("encoded");
  for (const [ptr, local] of written) {
    if (storage !== undefined) {
      c.get(local);
      encode();
      c.set(encoded);
    }
    for (let lane = 0; lane < ops.lanes - 1; lane++) {
      remaining();
      c.i32(lane).op(0x4b, OP.if, OP.void);
      address(ptr);
      if (storage === undefined) c.get(local).simd(ops.extract, lane).op(ops.store, ...Code.memarg(align, lane * size));
      else c.get(encoded).simd(SIMD.i32x4ExtractLane, lane).op(OP.i32Store16, ...Code.memarg(align, lane * size));
      c.op(OP.end);
    }
  }
  c.op(OP.end);

  // before all of it: the scalars splatted (float32 lanes: demoted, exactly, as they arrive rounded), the constants, the loop's end
  const loop = c.bytes.splice(0);
  KERNEL_SCALARS.forEach((_, k) => {
    c.get(5 + k);
    if (variant.lane === "float32") c.op(OP.f32DemoteF64);
    c.simd(ops.splat).set(scalarLocals[k]!);
  });
  c.get(N).i32(-ops.lanes).op(OP.i32And).i32(size).op(OP.i32Mul).set(vectorEnd);
  c.bytes.push(...vc.prologueCode(), ...loop);
  return c;
}

/** The steps function: a loop calling the module's step (function index `step`) once per list entry. */
function stepsFunction(step: number): Code {
  const c = new Code([I32, I32, I32]);
  const [LIST, COUNT, SCALARS] = [0, 1, 2];
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
  vc.guarded(() => {
    c.get(3).get(i).op(OP.i32Add);
    vc.fma(load(0), load(1), load(2))();
    c.simd(SIMD.store, ...Code.memarg(alignLog2));
  }, []);
  c.get(i).i32(16).op(OP.i32Add).set(i).op(OP.br, 0, OP.end, OP.end);
  const loop = c.bytes.splice(0);
  c.get(4).i32(vc.ops.size).op(OP.i32Mul).set(end);
  c.bytes.push(...vc.prologueCode(), ...loop);
  return c;
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
  // step's function index: after the one import
  return encodeModule(moduleSpec(limits, [{ name: "step", code: stepFunction(variant) }, { name: "steps", code: stepsFunction(1) }]));
}

/** The bytes of a module exporting `fma` over arrays (tests and the relaxed-madd probe). */
export function fmaModuleBytes(lane: Lane, strategy: FmaStrategy, limits: MemoryLimits): Uint8Array<ArrayBuffer> {
  return encodeModule(moduleSpec(limits, [{ name: "fma", code: fmaFunction(lane, strategy) }]));
}
