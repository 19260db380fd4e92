// NAdam as WebAssembly SIMD kernels over tensors in WebAssembly memory: the same bits as PyTorch's CPU kernels.
import { NAdam, Tensor, wasmBackend } from "../impl/index.ts";

export function minimize(): number[] {
  const backend = wasmBackend({ profile: "vectorized" }); // PyTorch on an AVX2 / AVX512 CPU
  const w = backend.tensor([0.5, -1.5, 2], "float32"); // its storage is in the backend's memory: stepped in place, no copy
  const optimizer = new NAdam([w], { lr: 0.05, weight_decay: 0.01 }, { backend });
  for (let step = 0; step < 100; step++) {
    w.grad = Tensor.from(w.toArray().map((x) => 2 * x), "float32"); // d/dw of |w|²; a host tensor is copied in
    optimizer.step();
  }
  return w.toArray();
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(minimize().join(", "));
