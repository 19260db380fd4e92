/**
 * Cases no port can look up: made at run time from a seed (fresh each run,
 * printed, so that a run can be repeated), judged against the oracle computed
 * on the fly. Each is a closed loop on a random quadratic with random options,
 * so that a port which answers the golden cases from the suite's own files
 * (they ship with it) still has to compute these.
 */
import { randomInt } from "node:crypto";
import type { CodePath, RoundingProfile } from "../spec/nadam/types.ts";
import type { ConformanceCase } from "./cases.ts";
import { optionsOf } from "./cases.ts";
import type { Objective } from "./objectives.ts";

/** Steps of each random case: enough for mu_product and the bias corrections to move. */
export const RANDOM_STEPS = 30;

/** A fresh seed (31 bits, easy to type back). */
export function freshSeed(): number {
  return randomInt(2 ** 31);
}

/** mulberry32: a small, fast PRNG whose whole state is the seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface RandomCaseOptions {
  readonly dtypes?: readonly ("float32" | "float64")[];
  readonly paths?: readonly CodePath[];
  readonly profiles?: readonly RoundingProfile[];
}

/** `count` cases from `seed`; the same seed gives the same cases. */
export function randomCases(seed: number, count: number, options: RandomCaseOptions = {}): ConformanceCase[] {
  const next = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * next();
  const logUniform = (lo: number, hi: number) => Math.exp(uniform(Math.log(lo), Math.log(hi)));
  const dtypes = options.dtypes ?? ["float32", "float64"];
  const paths = options.paths ?? ["forloop", "foreach"];
  const profiles = options.profiles ?? ["default", "vectorized"];
  const cases: ConformanceCase[] = [];
  for (let n = 0; n < count; n++) {
    const shapes = Array.from({ length: 1 + Math.floor(next() * 3) }, () => pick([[], [3], [2, 3], [5]] as number[][]));
    const params = shapes.map((shape, i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return { name: `p${i}`, shape, init: Array.from({ length: size }, () => uniform(-3, 3)), scale: Array.from({ length: size }, () => logUniform(1e-2, 1e2)), target: Array.from({ length: size }, () => uniform(-2, 2)) };
    });
    const weightDecay = pick([0, 0, 1e-2, 0.1]);
    const objective: Objective = {
      name: `random-${n}`,
      description: "a random quadratic ½ Σ a_i (θ_i - c_i)² with random options",
      params: params.map(({ name, shape, init }) => ({ name, shape, init })),
      options: {
        lr: logUniform(1e-4, 0.1),
        betas: [uniform(0.8, 0.95), uniform(0.99, 0.9999)],
        eps: pick([1e-8, 1e-6, 1e-4]),
        weight_decay: weightDecay,
        momentum_decay: pick([4e-3, 6e-3, 1e-2]),
        decoupled_weight_decay: weightDecay > 0 && next() < 0.5,
      },
      grad: (values) => values.map((v, i) => v.map((x, j) => params[i]!.scale[j]! * (x - params[i]!.target[j]!))),
    };
    const dtype = pick(dtypes);
    const path = pick(paths);
    cases.push({
      id: `random/${seed}/${n}/${dtype}/${path}`,
      description: `${objective.description}: ${RANDOM_STEPS} steps from seed ${seed}, each grad computed from the port's own params`,
      tags: ["random"],
      dtype,
      path,
      profile: pick(profiles),
      default_dtype: "float32",
      features: [],
      options: optionsOf([objective.options]),
      source: { kind: "closed-loop", objective, steps: RANDOM_STEPS },
    });
  }
  return cases;
}
