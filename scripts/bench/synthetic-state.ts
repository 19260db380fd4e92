/**
 * A NAdam state dict of any size made up piece by piece, never held whole:
 * for the checkpoint scale benchmark and the bounded-memory test. Its values
 * are valid (exp_avg finite, exp_avg_sq >= 0), from a fixed sequence.
 */
import { LazyTensor, MemoryTensor, type Skeleton } from "../../checkpoint/lazy.ts";
import { Tensor } from "../../tensor/tensor.ts";

/** float32 elements from a fixed sequence, made as they are read; `negative` ones at the given indices (a diverged state). */
export class GeneratedTensor extends LazyTensor {
  readonly where = "generated";
  constructor(
    shape: readonly number[],
    private readonly seed: number,
    private readonly negativeAt: readonly number[] = [],
  ) {
    super("float32", shape);
  }
  read(visit: (bytes: Uint8Array) => void, chunkBytes: number): void {
    const n = Math.max(1, Math.floor(chunkBytes / 4));
    const piece = new Float32Array(n);
    let x = this.seed >>> 0;
    for (let at = 0; at < this.numel; at += n) {
      const count = Math.min(n, this.numel - at);
      for (let i = 0; i < count; i++) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        piece[i] = (x >>> 8) * 2 ** -30;
      }
      for (const k of this.negativeAt) if (k >= at && k < at + count) piece[k - at] = -piece[k - at]! - 1;
      visit(new Uint8Array(piece.buffer, 0, count * 4));
    }
  }
}

/** One param of `numel` float32 elements per entry of `sizes`, with NAdam's state after 10 steps. */
export function syntheticState(sizes: readonly number[], options: { readonly negativeAt?: readonly number[] } = {}): Skeleton {
  const scalar = (x: number) => new MemoryTensor(Tensor.from([x], "float32", []));
  const state: Skeleton["state"] = {};
  sizes.forEach((numel, id) => {
    state[id] = { step: scalar(10), mu_product: scalar(0.5), exp_avg: new GeneratedTensor([numel], 2 * id + 1), exp_avg_sq: new GeneratedTensor([numel], 2 * id + 2, id === 0 ? options.negativeAt : []) };
  });
  return {
    state,
    param_groups: [{ lr: 0.002, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, momentum_decay: 0.004, decoupled_weight_decay: false, maximize: false, foreach: null, capturable: false, differentiable: false, params: sizes.map((_, i) => i) }],
  };
}
