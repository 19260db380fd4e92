/**
 * A float32 fused multiply-add for tfjs (x·y + z rounded once), which tfjs
 * lacks: PyTorch's vectorized CPU profile fuses add(alpha), addcmul and lerp.
 * One custom kernel, `NadamFma32`, registered per tfjs backend:
 * - cpu, wasm: the spec's fma32 over the tensors' memory (host memory for
 *   these two backends, so reading it is not a device read-back);
 * - webgpu: an exact emulation in float32 WGSL (FMA_WGSL below), since WGSL's
 *   own `fma` may be unfused (lavapipe's is).
 * Elsewhere (the tensorflow backend) there is none, and only the `default`
 * profile is offered.
 */
import type * as TF from "@tensorflow/tfjs-core";
import { fma32 } from "../../../spec/float/fma.ts";
import type { RoundingProfile } from "../../../spec/nadam/types.ts";
import type { Fma, Tfjs } from "./kernel.ts";
import type { TfjsBackendName } from "./runtime.ts";

const KERNEL = "NadamFma32";

/** The tfjs backends that have the fused kernel. */
export const FMA_BACKENDS: readonly TfjsBackendName[] = ["cpu", "wasm", "webgpu"];

type Values = Float32Array;

/** out[i] = fma32(x[i], y[i], z[i]), an operand of one element broadcast. */
function fmaLoop(out: Values, x: Values, y: Values, z: Values): void {
  const [sx, sy, sz] = [x.length === 1 ? 0 : 1, y.length === 1 ? 0 : 1, z.length === 1 ? 0 : 1];
  for (let i = 0; i < out.length; i++) out[i] = fma32(x[i * sx]!, y[i * sy]!, z[i * sz]!);
}

/** The operands' shape: they are all one shape, or 0-d (a 0-d operand of one element next to an empty tensor included). */
function outputShape(inputs: readonly TF.TensorInfo[]): number[] {
  const shaped = inputs.find((t) => t.shape.length > 0) ?? inputs[0]!;
  return [...shaped.shape];
}

interface CpuBackend {
  data: { get(id: object): { values: Values } };
  makeTensorInfo(shape: number[], dtype: "float32", values: Values): TF.TensorInfo;
}
interface WasmBackend {
  makeOutput(shape: number[], dtype: "float32"): TF.TensorInfo;
  typedArrayFromHeap(info: TF.TensorInfo): Values;
}
interface WebgpuBackend {
  runWebGPUProgram(program: object, inputs: TF.TensorInfo[], dtype: "float32", uniforms: { type: "float32"; data: number[] }[]): TF.TensorInfo;
}

/**
 * x·y + z rounded once, in float32 WGSL arithmetic: WGSL's own \`fma\` may be
 * split into a multiply and an add, and on lavapipe it is (measured). Boldo &
 * Melquiond's emulation (2008): Dekker's exact product (operands split by
 * masking their significands), TwoSum with z, the two error terms added rounded to odd (the
 * last bit set when inexact, read through bitcast), and one final rounding.
 * Exact unless the product's error term falls below float32's normal range.
 * Mesa's shader compiler simplifies float algebra it is not told is exact
 * (s - (s - a) to a: TwoSum's error becomes 0); a uniform \`one\` it cannot
 * see through keeps each error-free step as written (measured on lavapipe).
 */
export const FMA_WGSL = `
  fn twoSum(a : f32, b : f32) -> vec2<f32> {
    let s = a + b;
    let bb = s * uniforms.one - a;
    return vec2<f32>(s, (a - (s - bb) * uniforms.one) + (b - bb));
  }
  // by the exponent bits: the compiler may assume floats are never Inf or NaN
  fn finite(a : f32) -> bool {
    return (bitcast<u32>(a) & 0x7f800000u) != 0x7f800000u;
  }
  // the top 12 bits of the significand, and the rest: exact, and no overflow as 4097·a could
  fn split(a : f32) -> vec2<f32> {
    let hi = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
    return vec2<f32>(hi, a - hi);
  }
  fn fmaExact(x : f32, y : f32, z : f32) -> f32 {
    let p = x * y;
    if (p == 0.0 || !finite(p) || !finite(z)) { return p + z; }
    let xs = split(x);
    let ys = split(y);
    let pe = ((xs.x * ys.x - p) + xs.x * ys.y + xs.y * ys.x) + xs.y * ys.y;
    let t = twoSum(z, p);
    if (!finite(t.x)) { return t.x; }
    let w = twoSum(t.y, pe);
    var v = w.x;
    var bits = bitcast<u32>(v);
    if (w.y != 0.0 && (bits & 1u) == 0u) {
      if ((w.y > 0.0) == (v > 0.0)) { bits = bits + 1u; } else { bits = bits - 1u; }
      v = bitcast<f32>(bits);
    }
    return t.x + v;
  }`;

/** An element-wise WGSL program over the flat output; tfjs's helpers broadcast a 0-d operand. */
function webgpuProgram(util: WebgpuUtil, shape: number[]): object {
  const dispatchLayout = util.flatDispatchLayout(shape);
  const workgroupSize: [number, number, number] = [64, 1, 1];
  return {
    outputShape: shape,
    shaderKey: "nadam_fma32",
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, shape, workgroupSize),
    variableNames: ["X", "Y", "Z"],
    workgroupSize,
    size: true,
    uniforms: "one : f32,",
    getUserCode: () => `
      ${FMA_WGSL}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let coords = getCoordsFromIndex(index);
          setOutputAtIndex(index, fmaExact(getXByOutputCoords(coords), getYByOutputCoords(coords), getZByOutputCoords(coords)));
        }
      }`,
  };
}

type WebgpuUtil = (typeof import("@tensorflow/tfjs-backend-webgpu"))["webgpu_util"];

const registered = new Set<TfjsBackendName>();

/** Registers the kernel on `name` (once); the webgpu program needs its helpers loaded first. */
async function register(tf: Tfjs, name: TfjsBackendName): Promise<void> {
  if (registered.has(name) || !FMA_BACKENDS.includes(name)) return;
  let kernelFunc: TF.KernelFunc;
  if (name === "cpu") {
    kernelFunc = ({ inputs, backend }) => {
      const cpu = backend as unknown as CpuBackend;
      const [x, y, z] = [inputs.x!, inputs.y!, inputs.z!].map((t) => cpu.data.get(t.dataId).values) as [Values, Values, Values];
      const shape = outputShape([inputs.x!, inputs.y!, inputs.z!]);
      const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
      fmaLoop(out, x, y, z);
      return cpu.makeTensorInfo(shape, "float32", out);
    };
  } else if (name === "wasm") {
    kernelFunc = ({ inputs, backend }) => {
      const wasm = backend as unknown as WasmBackend;
      const shape = outputShape([inputs.x!, inputs.y!, inputs.z!]);
      const output = wasm.makeOutput(shape, "float32");
      // views taken after the allocation: growing the wasm heap detaches older ones
      const [x, y, z] = [inputs.x!, inputs.y!, inputs.z!].map((t) => wasm.typedArrayFromHeap(t)) as [Values, Values, Values];
      fmaLoop(wasm.typedArrayFromHeap(output), x, y, z);
      return output;
    };
  } else {
    const { webgpu_util } = await import("@tensorflow/tfjs-backend-webgpu");
    kernelFunc = ({ inputs, backend }) => {
      const operands = [inputs.x!, inputs.y!, inputs.z!];
      return (backend as unknown as WebgpuBackend).runWebGPUProgram(webgpuProgram(webgpu_util, outputShape(operands)), operands, "float32", [{ type: "float32", data: [1] }]);
    };
  }
  tf.registerKernel({ kernelName: KERNEL, backendName: name, kernelFunc });
  registered.add(name);
}

/** Prepares the fused kernel for a backend that will run `profile` (call before fmaFor). */
export async function prepareFma(tf: Tfjs, name: TfjsBackendName, profile: RoundingProfile): Promise<void> {
  if (profile === "vectorized") await register(tf, name);
}

/** The fma a step under `profile` uses: null (unfused) for `default`. */
export function fmaFor(tf: Tfjs, name: TfjsBackendName, profile: RoundingProfile): Fma {
  if (profile === "default") return null;
  if (!registered.has(name)) throw new Error(`the tfjs ${name} backend has no fused multiply-add kernel: it runs the default profile only`);
  return (x, y, z) => tf.engine().runKernel(KERNEL, { x, y, z } as unknown as TF.NamedTensorMap) as TF.Tensor;
}
