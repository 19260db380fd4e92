/**
 * The whole NAdam update of a param (or of a flattened group) as WGSL, for
 * tfjs's webgpu backend: kernel.ts's op sequence, op for op, in one shader per
 * result (param, exp_avg, exp_avg_sq: tfjs programs have one output), so a
 * step costs 3 launches and one pass over memory instead of ~20 of each.
 *
 * Every intermediate goes through `keep(x) = x * uniforms.one`: Mesa's shader
 * compiler rewrites float algebra it is not told is exact (fma.ts), and a
 * uniform it cannot see through pins each PyTorch kernel's rounding where
 * kernel.ts's separate ops put it. (A multiply by one, or a multiply-add
 * with one as a factor, rounds nothing.)
 */
import type * as TF from "@tensorflow/tfjs-core";
import type { StepScalars } from "../../../spec/nadam/scalars.ts";
import type { NadamHyperParameters } from "../../../spec/nadam/step.ts";
import type { CodePath, RoundingProfile } from "../../../spec/nadam/types.ts";
import { FMA_WGSL } from "./fma.ts";
import type { Moments, Tfjs } from "./kernel.ts";

type WebgpuUtil = (typeof import("@tensorflow/tfjs-backend-webgpu"))["webgpu_util"];
interface WebgpuBackend {
  runWebGPUProgram(program: object, inputs: TF.TensorInfo[], dtype: "float32", uniforms: { type: "float32"; data: number[] }[]): TF.TensorInfo;
}

const UNIFORMS = ["one", "decay", "alpha", "w", "wMinusOne", "oneMinusW", "beta2", "oneMinusBeta2", "bc", "eps", "step1", "step2"] as const;

/** The shader's code for one configuration (what changes per step is in the uniforms). */
function shader(h: NadamHyperParameters, path: CodePath, profile: RoundingProfile, output: 0 | 1 | 2, smallWeight: boolean): string {
  const fused = profile === "vectorized";
  const lines = [
    `var param = getPByOutputIndex(index);`,
    `var grad = ${h.maximize ? "-" : ""}getGByOutputIndex(index);`,
    `let m0 = getMByOutputIndex(index);`,
    `let v0 = getVByOutputIndex(index);`,
  ];
  if (h.weight_decay !== 0) lines.push(h.decoupled_weight_decay ? `param = keep(param * uniforms.decay);` : `grad = ${fused ? "fmaExact(param, uniforms.alpha, grad)" : "keep(grad + keep(uniforms.alpha * param))"};`);
  lines.push(`let diff = keep(grad - m0);`);
  lines.push(smallWeight ? `let expAvg = ${fused ? "fmaExact(uniforms.w, diff, m0)" : "keep(m0 + keep(uniforms.w * diff))"};` : `let expAvg = ${fused ? "fmaExact(uniforms.wMinusOne, diff, grad)" : "keep(grad - keep(diff * uniforms.oneMinusW))"};`);
  lines.push(`let decayed = keep(v0 * uniforms.beta2);`, `let scaled = keep(uniforms.oneMinusBeta2 * grad);`);
  lines.push(`let expAvgSq = ${fused ? "fmaExact(scaled, grad, decayed)" : "keep(decayed + keep(scaled * grad))"};`);
  lines.push(path === "foreach" ? `let root = keep(keep(sqrt(expAvgSq)) / uniforms.bc);` : `let root = keep(sqrt(keep(expAvgSq / uniforms.bc)));`);
  lines.push(`let denom = keep(root + uniforms.eps);`);
  if (path === "forloop" && h.differentiable === true) {
    lines.push(`param = keep(param + keep(keep(grad * uniforms.step1) / denom));`, `param = keep(param + keep(keep(expAvg * uniforms.step2) / denom));`);
  } else {
    lines.push(`param = keep(param + keep(keep(uniforms.step1 * grad) / denom));`, `param = keep(param + keep(keep(uniforms.step2 * expAvg) / denom));`);
  }
  lines.push(`setOutputAtIndex(index, ${["param", "expAvg", "expAvgSq"][output]});`);
  return `
    ${fused ? FMA_WGSL : ""}
    fn keep(x : f32) -> f32 { return x * uniforms.one; }
    fn main(index : i32) {
      if (index < uniforms.size) {
        ${lines.join("\n        ")}
      }
    }`;
}

let util: WebgpuUtil | undefined;

/** Loads the webgpu backend's helpers (once): fusedUpdate is synchronous after it. */
export async function prepareFused(): Promise<void> {
  util ??= (await import("@tensorflow/tfjs-backend-webgpu")).webgpu_util;
}

export function fusedReady(): boolean {
  return util !== undefined;
}

/** kernel.ts's nadamUpdate, fused: the same bits (the property tests hold it to them), 3 launches. */
export function fusedUpdate(tf: Tfjs, m: Moments, gradIn: TF.Tensor, h: NadamHyperParameters, s: StepScalars, path: CodePath, profile: RoundingProfile): Moments {
  if (util === undefined) throw new Error("fusedUpdate before prepareFused()");
  const f = Math.fround;
  const [beta1, beta2] = h.betas;
  const w = f(1 - beta1);
  const values: Record<(typeof UNIFORMS)[number], number> = {
    one: 1,
    decay: f(s.decayFactor),
    alpha: f(h.weight_decay),
    w,
    wMinusOne: f(w - 1),
    oneMinusW: f(1 - w),
    beta2: f(beta2),
    oneMinusBeta2: f(1 - beta2),
    bc: f(path === "foreach" ? s.biasCorrection2Sqrt : s.biasCorrection2),
    eps: f(h.eps),
    step1: f(s.gradStepSize),
    step2: f(s.expAvgStepSize),
  };
  const shape = [...m.param.shape];
  const flat = [m.param, gradIn, m.expAvg, m.expAvgSq].map((t) => tf.reshape(t, [-1]));
  const n = flat[0]!.size;
  const dispatchLayout = util.flatDispatchLayout([n]);
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const smallWeight = Math.abs(w) < 0.5;
  const backend = tf.backend() as unknown as WebgpuBackend;
  const key = [path, profile, h.maximize, h.weight_decay !== 0, h.decoupled_weight_decay, h.differentiable === true, smallWeight].map(String).join("_");
  const [param, expAvg, expAvgSq] = ([0, 1, 2] as const).map((output) => {
    const program = {
      outputShape: [n],
      shaderKey: `nadam_update_${key}_${output}`,
      dispatchLayout,
      dispatch: util!.computeDispatch(dispatchLayout, [n], workgroupSize),
      variableNames: ["P", "G", "M", "V"],
      workgroupSize,
      size: true,
      uniforms: UNIFORMS.map((u) => `${u} : f32,`).join(" "),
      getUserCode: () => shader(h, path, profile, output, smallWeight),
    };
    const info = backend.runWebGPUProgram(program, flat, "float32", UNIFORMS.map((u) => ({ type: "float32", data: [values[u]] })));
    return tf.reshape(tf.engine().makeTensorFromTensorInfo(info), shape);
  }) as [TF.Tensor, TF.Tensor, TF.Tensor];
  return { param, expAvg, expAvgSq };
}
