/**
 * NAdam's step as an ONNX graph: the per-element kernel of spec/nadam/step.ts,
 * one ONNX op per PyTorch kernel rounding, in PyTorch's order for each code
 * path. The host-side scalars (spec/nadam/scalars.ts) are graph inputs, fed as
 * 0-d tensors already rounded to the dtype, as PyTorch's kernels receive them.
 *
 * One graph serves every shape: each tensor is fed flattened, with a symbolic
 * length. A for-loop graph updates one param; a foreach graph updates N params
 * of one dtype in one run (PyTorch's _foreach ops over a tensor list).
 *
 * What the graph cannot say with plain ops, it builds from them:
 * - the fused multiply-add of the `vectorized` profile (add(alpha=), addcmul,
 *   lerp): for float32, the product and sum in float64 and a midpoint fix-up
 *   of the one double rounding (spec/float/fma.ts explains why it is needed);
 *   for float64, Dekker's exact product, TwoSum, and the same midpoint fix-up
 *   on the final sum, scaled where products underflow (see fma64);
 * - a 16-bit dtype's kernels: float32 ops, each result rounded by a Cast.
 * Each op's own rounding is what the property tests measure on each provider:
 * ONNX Runtime's CPU and WebGPU (lavapipe) Add, Sub, Mul, Div, Sqrt and Cast
 * round correctly; its CPU Where loses a -0 (see signedWhere).
 */
import type { CodePath, RoundingProfile } from "../../../spec/nadam/types.ts";
import { encodeModel, ONNX_ELEMENT_TYPE, type OnnxElementType, type OnnxGraph, type OnnxNode, type ScalarConstant, type ValueInfo } from "./onnx.ts";

/** The tensor dtypes of these graphs (the 16-bit ones computed in float32, as PyTorch's opmath). */
export type GraphDType = "float32" | "float64" | "float16" | "bfloat16";

/** Everything that changes a step graph's structure; the rest are its scalar inputs. */
export interface StepGraphSignature {
  readonly path: CodePath;
  readonly dtype: GraphDType;
  readonly profile: RoundingProfile;
  /** How many params one run updates: 1 on the for-loop path. */
  readonly params: number;
  readonly maximize: boolean;
  readonly weightDecay: "none" | "l2" | "decoupled";
  /** PyTorch's lerp form: |weight| < 0.5 computes m + w·(g - m), otherwise g - (g - m)·(1 - w). */
  readonly lerp: "small-weight" | "large-weight";
  /**
   * The differentiable branch (for-loop): grad and exp_avg are multiplied by their
   * step sizes into new tensors before the addcdivs, which rounds them to a 16-bit
   * dtype first (the same bits as the plain branch for float32 and float64).
   */
  readonly scaledTerms?: boolean;
  /**
   * The most tensors one Concat may join (ONNX Runtime's WebGPU shaders bind at most
   * 16 storage buffers): over it, Concats form a tree and each result is a Slice
   * (inputs start{i}, end{i}) instead of one Split. Unset: no limit.
   */
  readonly fanIn?: number;
}

/** The scalar inputs, by name: one set for all the params of a run. */
export const GROUP_SCALARS = ["lerp_weight", "beta2", "one_minus_beta2", "eps", "weight_decay", "bias_correction", "grad_step", "exp_avg_step"] as const;
export type GroupScalar = (typeof GROUP_SCALARS)[number];

/** What to feed each scalar input (0-d, the graph's dtype): the host-side values of spec/nadam/scalars.ts. */
export const SCALAR_INPUTS: Readonly<Record<GroupScalar | "lengths" | "in_body" | "start{i}" | "end{i}", string>> = {
  lerp_weight: "w = 1 - beta1 in the compute type (float32, float64 for float64); the large-weight form takes w - 1 (vectorized) or 1 - w (default), each rounded",
  beta2: "beta2 (foreach with a 16-bit dtype: rounded to that dtype, as _foreach_mul_ rounds its scalar)",
  one_minus_beta2: "1 - beta2",
  eps: "eps (a 16-bit dtype: rounded to it, as add(scalar) does)",
  weight_decay: "weight_decay (l2; a 16-bit dtype: rounded to it), or the decay factor 1 - lr·weight_decay (decoupled; foreach with a float lr and a 16-bit dtype: rounded to it); unused without weight decay",
  bias_correction: "for-loop: 1 - beta2^step; foreach: (1 - beta2^step) ** 0.5 (Python's pow, not sqrt)",
  grad_step: "-lr·(1 - mu_t) / (1 - mu_product_t)",
  exp_avg_step: "-lr·mu_{t+1} / (1 - mu_product_t·mu_{t+1})",
  lengths: "int64: the params' element counts, in order (the split of the concatenated result)",
  in_body: "bool, one per element of the concatenation (16-bit, vectorized, L2 weight decay): whether PyTorch's vectorized main loop computes it (nadam-reference/spec vectorBodyLength)",
  "start{i}": "int64 [1]: where param i begins in the concatenation (graphs with a fanIn below the param count)",
  "end{i}": "int64 [1]: where param i ends in the concatenation",
};

/** Input and output names of param i. */
export const io = {
  param: (i: number) => `param${i}`,
  grad: (i: number) => `grad${i}`,
  expAvg: (i: number) => `exp_avg${i}`,
  expAvgSq: (i: number) => `exp_avg_sq${i}`,
  paramOut: (i: number) => `param${i}_out`,
  expAvgOut: (i: number) => `exp_avg${i}_out`,
  expAvgSqOut: (i: number) => `exp_avg_sq${i}_out`,
} as const;

/** A small SSA builder: each method adds one node and returns its output's name. */
class Builder {
  readonly nodes: OnnxNode[] = [];
  readonly constants = new Map<string, ScalarConstant>();
  private count = 0;

  /** A 0-d constant, named after its value and type. */
  constant(type: ScalarConstant["type"], value: number): string {
    const name = `${value < 0 ? "minus_" : ""}${Math.abs(value) === 2 ** 27 + 1 ? "splitter" : Math.abs(value)}_${type}`;
    this.constants.set(name, { name, type, value });
    return name;
  }

  constructor(private readonly prefix: string) {}

  op(op: string, inputs: readonly string[], attributes?: Readonly<Record<string, number>>, output?: string): string {
    const out = output ?? `${this.prefix}t${this.count++}`;
    this.nodes.push({ op, inputs, outputs: [out], ...(attributes ? { attributes } : {}) });
    return out;
  }

  add = (a: string, b: string, out?: string) => this.op("Add", [a, b], undefined, out);
  sub = (a: string, b: string, out?: string) => this.op("Sub", [a, b], undefined, out);
  mul = (a: string, b: string, out?: string) => this.op("Mul", [a, b], undefined, out);
  div = (a: string, b: string) => this.op("Div", [a, b]);
  equal = (a: string, b: string) => this.op("Equal", [a, b]);
  and = (a: string, b: string) => this.op("And", [a, b]);
  not = (a: string) => this.op("Not", [a]);
  where = (c: string, a: string, b: string, out?: string) => this.op("Where", [c, a, b], undefined, out);
  cast = (a: string, to: OnnxElementType, out?: string) => this.op("Cast", [a], { to: ONNX_ELEMENT_TYPE[to] }, out);
}

/**
 * x·y + z rounded once to float32 (x, y, z float32 tensors or scalars). The
 * product is exact in float64 and the float64 sum S rounds once; rounding S to
 * float32 is then wrong only when S lies exactly halfway between two float32
 * values R and N and the float64 addition's error E (TwoSum) is not zero: then
 * the exact sum is on N's side when E has the sign of N - R.
 */
function fma32(b: Builder, x: string, y: string, z: string, out?: string): string {
  const X = b.cast(x, "float64");
  const Y = b.cast(y, "float64");
  const Z = b.cast(z, "float64");
  const P = b.mul(X, Y);
  const S = b.add(P, Z);
  const R = b.cast(S, "float32");
  const B = b.cast(R, "float64");
  // C = 2S - B: the other float32 neighbour N exactly when S is a midpoint (and not a float32 value otherwise).
  const C = b.sub(b.add(S, S), B);
  const N = b.cast(C, "float32");
  const midpoint = b.and(b.and(b.not(b.equal(S, B)), b.equal(b.cast(N, "float64"), C)), b.not(b.op("IsInf", [R])));
  // TwoSum error of S = P + Z
  const Zv = b.sub(S, P);
  const E = b.add(b.sub(P, b.sub(S, Zv)), b.sub(Z, Zv));
  const towardN = b.and(b.not(b.equal(E, b.constant("float64", 0))), b.equal(b.op("Sign", [E]), b.op("Sign", [b.sub(C, B)])));
  const choose = b.and(midpoint, towardN);
  return signedWhere(b, choose, N, R, b.and(negativeZero(b, R, "float32"), b.not(choose)), "float32", out);
}

/**
 * Where(condition, a, b) whose result is -0 exactly when `negative` says so.
 * ONNX Runtime's CPU Where (1.30) turns a selected -0 into +0 (measured: from
 * its first branch, not its second), so a zero's sign is set afterwards: the
 * selected value times -1 where its sign is wrong (nothing else changes).
 */
function signedWhere(b: Builder, condition: string, x: string, y: string, negative: string, type: ScalarConstant["type"], out?: string): string {
  const selected = b.where(condition, x, y);
  const wrongSign = b.op("Xor", [negativeZero(b, selected, type), negative]);
  return b.mul(selected, b.where(wrongSign, b.constant(type, -1), b.constant(type, 1)), out);
}

/** Whether v is -0: zero, with 1/v = -inf. */
function negativeZero(b: Builder, v: string, type: ScalarConstant["type"]): string {
  return b.and(b.equal(v, b.constant(type, 0)), b.op("Less", [b.div(b.constant(type, 1), v), b.constant(type, 0)]));
}

/**
 * x·y + z rounded once in float64, for every finite input with |x|, |y| < 2^996.
 *
 * Dekker's product uh + ul = x·y and TwoSum th + tl = z + uh are exact, so
 * x·y + z = th + r + e with r + e = tl + ul (TwoSum again). F = th ⊕ r, with
 * error f (TwoSum), is the correctly rounded result unless th + r is exactly
 * halfway between two float64 values (f = ±½ulp, which holds exactly when
 * (F + 2f) - F = 2f) and e pushes the exact sum off the midpoint towards the
 * neighbour F + 2f.
 *
 * Products below 2^-900 lose bits of ul to underflow. Then either |z| ≥ 2^-800,
 * and the product is under half an ulp of z, so z ⊕ x·y is the answer; or all of
 * it is small, and it is computed scaled by 2^1074 (x or y by 2^600, the other
 * by 2^474), where the subnormal grid becomes the integers: a scaled result
 * under 2^52 is rounded to an integer (ties to even, with the same midpoint
 * test against f and e), then scaled back exactly.
 */
function fma64(b: Builder, x: string, y: string, z: string, out?: string): string {
  const c = (v: number) => b.constant("float64", v);
  const abs = (a: string) => b.op("Abs", [a]);
  const less = (a: string, v: string) => b.op("Less", [a, v]);
  const sign = (a: string) => b.op("Sign", [a]);
  const nonzero = (a: string) => b.not(b.equal(a, c(0)));
  const split = (a: string): [string, string] => {
    const k = b.mul(c(2 ** 27 + 1), a);
    const hi = b.sub(k, b.sub(k, a));
    return [hi, b.sub(a, hi)];
  };
  const twoSum = (a: string, d: string): [string, string] => {
    const s = b.add(a, d);
    const dv = b.sub(s, a);
    return [s, b.add(b.sub(a, b.sub(s, dv)), b.sub(d, dv))];
  };

  const uh = b.mul(x, y);
  const tinyProduct = less(abs(uh), c(2 ** -900));
  const scaled = b.and(tinyProduct, less(abs(z), c(2 ** -800)));
  // scaled: the smaller of |x|, |y| (under 2^-450) times 2^600, the other (under 2^174) times 2^474, z times 2^1074
  const xSmaller = less(abs(x), abs(y));
  const big = b.where(scaled, c(2 ** 600), c(1));
  const rest = b.where(scaled, c(2 ** 474), c(1));
  const X = b.mul(x, b.where(xSmaller, big, rest));
  const Y = b.mul(y, b.where(xSmaller, rest, big));
  const Z = b.mul(b.mul(z, big), rest);
  const unscale = (v: string) => b.mul(b.mul(v, b.where(scaled, c(2 ** -600), c(1))), b.where(scaled, c(2 ** -474), c(1)));

  const UH = b.mul(X, Y);
  const [xh, xl] = split(X);
  const [yh, yl] = split(Y);
  const ul = b.sub(b.mul(xl, yl), b.sub(b.sub(b.sub(UH, b.mul(xh, yh)), b.mul(xl, yh)), b.mul(xh, yl)));
  const [th, tl] = twoSum(Z, UH);
  const [r, e] = twoSum(tl, ul);
  const [F, f] = twoSum(th, r);
  // 53-bit rounding
  const f2 = b.add(f, f);
  const N = b.add(F, f2);
  const midpoint = b.and(nonzero(f), b.equal(b.sub(N, F), f2));
  const towardN = b.and(nonzero(e), b.equal(sign(e), sign(f)));
  const rounded = b.where(b.and(midpoint, towardN), N, F); // (N is never zero; a zero F is +0, an exact cancellation)
  // integer rounding of a scaled result under 2^52 (a subnormal result): R1 = F rounded to an integer, ties to even
  const magic = b.mul(sign(F), c(2 ** 52));
  const R1 = b.sub(b.add(F, magic), magic);
  const d = b.sub(F, R1);
  const residual = b.where(nonzero(f), f, e); // the sign of the exact sum's distance from F
  const away = b.and(b.and(b.equal(abs(d), c(0.5)), nonzero(residual)), b.equal(sign(d), sign(residual)));
  const integer = b.where(away, b.add(R1, b.add(d, d)), R1);
  const subnormal = b.and(scaled, less(abs(F), c(2 ** 52)));
  const result = unscale(b.where(subnormal, integer, rounded));
  // An exact zero operand (the sign of a zero sum), an infinite or NaN operand (the error terms are then NaN)
  // or a tiny product beside a larger z: the plain expression is fma's answer.
  const plain = b.add(uh, z);
  const usePlain = b.op("Or", [b.op("Or", [b.op("Or", [b.equal(x, c(0)), b.equal(y, c(0))]), b.op("IsNaN", [result])]), b.and(tinyProduct, b.not(scaled))]);
  // A -0 answer: plain's, or a subnormal result that rounded to zero from below (x·y + z < 0).
  const negativeSum = less(b.where(nonzero(F), F, e), c(0));
  const negative = b.op("Or", [b.and(usePlain, negativeZero(b, plain, "float64")), b.and(b.and(b.not(usePlain), subnormal), b.and(b.equal(integer, c(0)), negativeSum))]);
  return signedWhere(b, usePlain, plain, result, negative, "float64", out);
}

/**
 * The step graph of a signature. Its N params share one set of scalar inputs
 * (their step count and mu_product: the backend runs params whose differ
 * apart). With N > 1 the params, grads and moments are concatenated, stepped
 * as one vector, and split back: the op count does not grow with N.
 */
export function stepGraph(sig: StepGraphSignature): OnnxGraph {
  if (sig.path === "forloop" && sig.params !== 1) throw new RangeError(`a for-loop step graph updates one param, not ${sig.params}`);
  if (!(Number.isInteger(sig.params) && sig.params >= 1)) throw new RangeError(`a step graph needs at least one param, not ${sig.params}`);
  const t = sig.dtype;
  const fused = sig.profile === "vectorized";
  // float16 tensors are computed in float32 (PyTorch's opmath), each kernel's result rounded to float16
  const half = t === "float16" || t === "bfloat16";
  const c: "float32" | "float64" = t === "float64" ? "float64" : "float32";
  // the tensors' type in the graph: bfloat16 values travel as float32 (onnxruntime's JavaScript API has no bfloat16 tensors)
  const io16: OnnxElementType = t === "bfloat16" ? "float32" : t;
  const inputs: ValueInfo[] = GROUP_SCALARS.map((name) => ({ name, type: c, shape: [] }));
  const outputs: ValueInfo[] = [];
  const b = new Builder("");
  const fma = (x: string, y: string, z: string, out?: string) => (c === "float64" ? fma64(b, x, y, z, out) : fma32(b, x, y, z, out));
  const sqrt = (x: string) => b.op("Sqrt", [x]);
  /** A kernel's result rounded to the tensor dtype (a 16-bit one), kept in the compute type. */
  const o = (x: string) => (half ? b.cast(b.cast(x, t), "float32") : x);

  const n = sig.params;
  for (let i = 0; i < n; i++) {
    const length = `n${i}`;
    inputs.push(...[io.param(i), io.grad(i), io.expAvg(i), io.expAvgSq(i)].map((name) => ({ name, type: io16, shape: [length] })));
    outputs.push(...[io.paramOut(i), io.expAvgOut(i), io.expAvgSqOut(i)].map((name) => ({ name, type: io16, shape: [length] })));
  }
  const fanIn = sig.fanIn ?? Infinity;
  if (!(fanIn >= 2)) throw new RangeError(`fanIn must be at least 2, not ${fanIn}`);
  const sliced = n > 1 && n > fanIn;
  if (n > 1 && !sliced) inputs.push({ name: "lengths", type: "int64", shape: [n] });
  if (half && fused && sig.weightDecay === "l2") inputs.push({ name: "in_body", type: "bool", shape: ["total"] });
  if (sliced) for (let i = 0; i < n; i++) inputs.push({ name: `start${i}`, type: "int64", shape: [1] }, { name: `end${i}`, type: "int64", shape: [1] });
  const all = (name: (i: number) => string) => Array.from({ length: n }, (_, i) => name(i));
  // the whole list as one vector (Concat, a tree of them over fanIn), and back (Split by `lengths`, or a Slice each)
  const joined = (name: (i: number) => string) => {
    let parts = all(name);
    while (parts.length > 1) {
      const chunks: string[][] = [];
      for (let k = 0; k < parts.length; k += Math.min(fanIn, parts.length)) chunks.push(parts.slice(k, k + fanIn));
      parts = chunks.map((chunk) => (chunk.length === 1 ? chunk[0]! : b.op("Concat", chunk, { axis: 0 })));
    }
    return parts[0]!;
  };
  const result = (name: (i: number) => string) => (n === 1 ? name(0) : undefined);
  const splitInto = (value: string, name: (i: number) => string) => {
    if (n === 1) return;
    if (!sliced) b.nodes.push({ op: "Split", inputs: [value, "lengths"], outputs: all(name), attributes: { axis: 0 } });
    else for (let i = 0; i < n; i++) b.op("Slice", [value, `start${i}`, `end${i}`], undefined, name(i));
  };

  const load = (name: (i: number) => string) => (io16 === "float16" ? b.cast(joined(name), "float32") : joined(name));
  // A result: named as the graph's output where it is one (one param, no float16 cast), else cast and split into them.
  const named = (name: (i: number) => string) => (half ? undefined : result(name));
  const emit = (value: string, name: (i: number) => string) =>
    splitInto(io16 === "float16" ? b.cast(value, "float16", result(name)) : half && n === 1 ? b.op("Identity", [value], undefined, result(name)) : value, name);

  let param = load(io.param);
  const expAvgIn = load(io.expAvg);
  const gradIn = load(io.grad);
  let grad = sig.maximize ? b.op("Neg", [gradIn]) : gradIn;
  if (sig.weightDecay === "decoupled") param = o(b.mul(param, "weight_decay")); // the decay factor 1 - lr·wd
  // (a 16-bit dtype's add(alpha): a float32 fma in the vectorized main loop, elsewhere the product rounded to the dtype first)
  if (sig.weightDecay === "l2") {
    const plain = o(b.add(grad, o(b.mul("weight_decay", param))));
    if (!fused) grad = plain;
    else if (!half) grad = fma(param, "weight_decay", grad);
    else {
      const inBody = o(fma(param, "weight_decay", grad));
      const negative = b.op("Or", [b.and("in_body", negativeZero(b, inBody, "float32")), b.and(b.not("in_body"), negativeZero(b, plain, "float32"))]);
      grad = signedWhere(b, "in_body", inBody, plain, negative, "float32");
    }
  }
  // exp_avg.lerp_(grad, 1 - beta1): lerp_weight is w, or w - 1 (fused) / 1 - w (unfused) for the large-weight form
  const diff = b.sub(grad, expAvgIn);
  const expAvgOut = named(io.expAvgOut);
  const expAvg =
    sig.lerp === "small-weight"
      ? fused
        ? fma("lerp_weight", diff, expAvgIn, expAvgOut)
        : b.add(expAvgIn, b.mul("lerp_weight", diff), expAvgOut)
      : fused
        ? fma("lerp_weight", diff, grad, expAvgOut)
        : b.sub(grad, b.mul(diff, "lerp_weight"), expAvgOut);
  const expAvgRounded = o(expAvg);
  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
  const decayed = o(b.mul(load(io.expAvgSq), "beta2"));
  const scaled = b.mul("one_minus_beta2", grad);
  const expAvgSqOut = named(io.expAvgSqOut);
  const expAvgSq = fused ? fma(scaled, grad, decayed, expAvgSqOut) : b.add(decayed, b.mul(scaled, grad), expAvgSqOut);
  const expAvgSqRounded = o(expAvgSq);
  // for-loop: sqrt(v / bias_correction2) + eps; foreach: sqrt(v) / bias_correction2 ** 0.5 + eps
  const root = sig.path === "forloop" ? o(sqrt(o(b.div(expAvgSqRounded, "bias_correction")))) : o(b.div(o(sqrt(expAvgSqRounded)), "bias_correction"));
  const denom = o(b.add(root, "eps"));
  // param.addcdiv_(grad, denom, value=grad_step); param.addcdiv_(exp_avg, denom, value=exp_avg_step);
  // the differentiable branch multiplies first into new (dtype-rounded) tensors, then addcdiv_(value=1)
  const term = (scale: string, value: string) => (sig.scaledTerms ? o(b.mul(value, scale)) : b.mul(scale, value));
  param = o(b.add(param, b.div(term("grad_step", grad), denom)));
  const paramOut = b.add(param, b.div(term("exp_avg_step", expAvgRounded), denom), named(io.paramOut));
  emit(o(paramOut), io.paramOut);
  emit(expAvgRounded, io.expAvgOut);
  emit(expAvgSqRounded, io.expAvgSqOut);
  return {
    name: `nadam_${sig.path}_${sig.dtype}_${sig.profile}`,
    inputs,
    constants: [...b.constants.values()],
    outputs,
    nodes: b.nodes,
    doc: `torch.optim.NAdam step (${JSON.stringify(sig)}), PyTorch's CPU rounding under the ${sig.profile} profile`,
  };
}

/** The ModelProto bytes of a signature's step graph. */
export function stepModel(sig: StepGraphSignature, producer: { readonly name: string; readonly version: string }): Uint8Array {
  return encodeModel(stepGraph(sig), producer);
}

/** x·y + z rounded once, elementwise, as the vectorized step graphs compute it (for tests of the emulation). */
export function fmaGraph(dtype: GraphDType): OnnxGraph {
  const b = new Builder("");
  (dtype === "float64" ? fma64 : fma32)(b, "x", "y", "z", "out");
  const v = (name: string): ValueInfo => ({ name, type: dtype, shape: ["n"] });
  return {
    name: `fma_${dtype}`,
    inputs: [v("x"), v("y"), v("z")],
    constants: [...b.constants.values()],
    outputs: [v("out")],
    nodes: b.nodes,
  };
}
