// NAdam as ONNX graphs on ONNX Runtime (npm install onnxruntime-node): the same bits as PyTorch's CPU kernels.
import { NAdam, Tensor, onnxRuntimeCpu, type NadamBackend } from "../impl/index.ts";

export async function minimize(backend?: NadamBackend<unknown>): Promise<number[]> {
  if (backend === undefined) {
    const availability = await onnxRuntimeCpu.availability(); // or onnxRuntimeWebgpu, onnxRuntimeCuda
    if (!availability.available) throw new Error(availability.reason);
    backend = await onnxRuntimeCpu.create({ profile: "vectorized" }); // PyTorch on an AVX2 / AVX512 CPU
  }
  const w = Tensor.from([0.5, -1.5, 2], "float32");
  const optimizer = new NAdam([w], { lr: 0.05, weight_decay: 0.01, foreach: true }, { backend });
  for (let step = 0; step < 100; step++) {
    w.grad = Tensor.from(w.toArray().map((x) => 2 * x), "float32"); // d/dw of |w|²
    await optimizer.stepAsync(); // the backend is asynchronous: stepAsync, stateDictAsync
  }
  return w.toArray();
}

if (import.meta.url === `file://${process.argv[1]}`) console.log((await minimize()).join(", "));
