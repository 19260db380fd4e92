/**
 * Comparing a port's trajectory with an expected one, step by step, under a
 * policy: the first divergence (step, tensor, state entry, element), and the
 * distance statistics a porter needs to tell rounding noise from a wrong formula.
 */
import type { TrajectoryStep } from "../golden/simulate.ts";
import { elementBits } from "../spec/float/codec.ts";
import { DTYPE, type DType } from "../spec/float/dtype.ts";
import { scaledDistance, type CaseSource, type TensorKind, type TolerancePolicy } from "./policy.ts";

export interface Divergence {
  readonly step: number; // 1-based
  readonly param: number;
  readonly kind: TensorKind;
  /** The dtype the value was expected in. */
  readonly dtype: DType;
  readonly index: number;
  readonly expected: number;
  readonly actual: number;
  /** ULPs at the tensor's scale (Infinity for NaN against a number). */
  readonly distance: number;
  readonly budget: number;
}

export interface Comparison {
  /** The first value beyond its budget, in step order and, within a step, in the order step, mu_product, exp_avg, exp_avg_sq, param. */
  readonly first: Divergence | null;
  /** Per tensor kind, per step, the largest distance (for plots). */
  readonly distanceByStep: Readonly<Record<TensorKind, readonly number[]>>;
  readonly maxDistance: Readonly<Partial<Record<TensorKind, number>>>;
  readonly values: number;
  readonly bitIdentical: boolean;
}

const ORDER: readonly TensorKind[] = ["step", "mu_product", "exp_avg", "exp_avg_sq", "param"];

/** SameValue, NaN = NaN: for two values of one dtype, equal bit patterns up to NaN payloads. */
function same(a: number, b: number): boolean {
  return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
}

export function compareTrajectories(dtype: DType, expected: readonly TrajectoryStep[], actual: readonly TrajectoryStep[], policy: TolerancePolicy, source: CaseSource = "golden"): Comparison {
  let first: Divergence | null = null;
  let values = 0;
  let bitIdentical = expected.length === actual.length;
  const maxDistance: Partial<Record<TensorKind, number>> = {};
  const distanceByStep: Record<TensorKind, number[]> = { step: [], mu_product: [], exp_avg: [], exp_avg_sq: [], param: [] };
  expected.forEach((want, s) => {
    const got = actual[s];
    const before = s > 0 ? expected[s - 1] : undefined;
    const stepMax: Record<TensorKind, number> = { step: 0, mu_product: 0, exp_avg: 0, exp_avg_sq: 0, param: 0 };
    /** The tensor's expected values one step earlier: the update's own operand, for the scale. */
    const previous = (param: number, kind: TensorKind): readonly number[] => {
      if (before === undefined) return [];
      if (kind === "param") return before.params[param] ?? [];
      const st = before.state[param];
      if (st === undefined || st === null) return [];
      return kind === "step" ? [st.step] : kind === "mu_product" ? [st.mu_product] : st[kind];
    };
    const consider = (param: number, kind: TensorKind, tensorDtype: DType, w: readonly number[], g: readonly number[] | undefined, gotDtype: DType = tensorDtype): void => {
      values += w.length;
      const gotValues = g ?? [];
      // A state tensor of another dtype (a float64 mu_product where torch keeps float32) is a divergence of its own.
      const exact = gotDtype === tensorDtype && w.length === gotValues.length && w.every((x, i) => same(x, gotValues[i]!));
      if (!exact) bitIdentical = false;
      const { distance, index } = exact ? { distance: 0, index: -1 } : gotDtype !== tensorDtype ? { distance: Infinity, index: 0 } : scaledDistance(tensorDtype, w, gotValues, previous(param, kind));
      maxDistance[kind] = Math.max(maxDistance[kind] ?? 0, distance);
      stepMax[kind] = Math.max(stepMax[kind], distance);
      const budget = policy.budget(dtype, kind, source);
      const over = budget === 0 ? !exact : distance > budget;
      if (over && first === null) {
        const i = Math.max(0, index);
        first = { step: s + 1, param, kind, dtype: tensorDtype, index: i, expected: w[i] ?? NaN, actual: gotValues[i] ?? NaN, distance, budget };
      }
    };
    const checks: [number, TensorKind, () => void][] = [];
    want.params.forEach((w, id) => {
      const ws = want.state[id] ?? null;
      const gs = got?.state[id] ?? null;
      if (ws !== null) {
        checks.push([id, "step", () => consider(id, "step", ws.step_dtype, [ws.step], gs ? [gs.step] : undefined, gs?.step_dtype)]);
        checks.push([id, "mu_product", () => consider(id, "mu_product", ws.mu_product_dtype, [ws.mu_product], gs ? [gs.mu_product] : undefined, gs?.mu_product_dtype)]);
        checks.push([id, "exp_avg", () => consider(id, "exp_avg", dtype, ws.exp_avg, gs?.exp_avg)]);
        checks.push([id, "exp_avg_sq", () => consider(id, "exp_avg_sq", dtype, ws.exp_avg_sq, gs?.exp_avg_sq)]);
      }
      checks.push([id, "param", () => consider(id, "param", dtype, w, got?.params[id])]);
    });
    // Within a step, report the entry that diverged first in the update's own order.
    checks.sort((a, b) => ORDER.indexOf(a[1]) - ORDER.indexOf(b[1]) || a[0] - b[0]);
    for (const [, , check] of checks) check();
    for (const kind of ORDER) distanceByStep[kind].push(stepMax[kind]);
  });
  return { first, distanceByStep, maxDistance, values, bitIdentical };
}

/** How many representable values of the dtype lie from a to b (0 for -0 and +0); undefined for NaN. */
export function ulpsApart(dtype: DType, a: number, b: number): bigint | undefined {
  if (Number.isNaN(a) || Number.isNaN(b)) return undefined;
  const ordered = (x: number): bigint => {
    const bits = elementBits(dtype, x);
    const sign = 1n << BigInt(8 * DTYPE[dtype].itemSize - 1);
    return bits & sign ? -(bits & (sign - 1n)) : bits;
  };
  const d = ordered(a) - ordered(b);
  return d < 0n ? -d : d;
}

function representable(dtype: DType, x: number): boolean {
  try {
    elementBits(dtype, x);
    return true;
  } catch {
    return false;
  }
}

/** A value with its bits: 0.5 (0x3f000000). */
function withBits(dtype: DType, x: number): string {
  if (Number.isNaN(x) || !representable(dtype, x)) return String(x);
  return `${x} (0x${elementBits(dtype, x).toString(16).padStart(2 * DTYPE[dtype].itemSize, "0")})`;
}

export function describeDivergence(d: Divergence, names: readonly string[]): string {
  const where = d.kind === "param" ? `param ${d.param} (${names[d.param] ?? "?"})[${d.index}]` : `state[${d.param}].${d.kind}${d.kind === "step" || d.kind === "mu_product" ? "" : `[${d.index}]`}`;
  if (d.budget === 0) {
    // Under `exact` only the bits count: how many values of the dtype lie between, not a scaled figure.
    const apart = representable(d.dtype, d.actual) ? ulpsApart(d.dtype, d.actual, d.expected) : undefined;
    const how = !representable(d.dtype, d.actual)
      ? `not a ${d.dtype} value`
      : apart === undefined
        ? "NaN against a number"
        : apart === 0n
          ? "-0 against +0"
          : `${apart} ${d.dtype} ULP${apart === 1n ? "" : "s"} apart`;
    return `step ${d.step}: ${where} = ${withBits(d.dtype, d.actual)}, expected ${withBits(d.dtype, d.expected)} (${how}; policy exact)`;
  }
  const distance = Number.isFinite(d.distance) ? `${d.distance.toPrecision(3)} ULPs at scale` : "not comparable";
  return `step ${d.step}: ${where} = ${d.actual}, expected ${d.expected} (${distance}; budget ${d.budget})`;
}
