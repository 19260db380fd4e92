/**
 * NAdam step throughput: the typed-array backend against the spec (the scalar
 * oracle) as baseline, in the same run, on the same inputs. Run: npm run bench
 */
import { NADAM_DEFAULTS } from "../../spec/nadam/defaults.ts";
import { nadamStep, type NadamParamState } from "../../spec/nadam/step.ts";
import type { CodePath, RoundingProfile } from "../../spec/nadam/types.ts";
import type { DType } from "../../spec/float/dtype.ts";
import { NAdam, Tensor, typedArrayBackend } from "../../impl/index.ts";

const STEPS = 7;
const WARMUP = 2; // steps run before timing starts (JIT tiers up)

function inputs(n: number, dtype: DType): { param: Tensor; grads: Tensor[] } {
  const values = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const grads = Array.from({ length: STEPS }, (_, s) => Tensor.from(values.map((x, i) => Math.cos(x * (s + 2) + i) * 0.1), dtype));
  return { param: Tensor.from(values, dtype), grads };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeTyped(n: number, dtype: DType, path: CodePath, profile: RoundingProfile): number {
  const { param, grads } = inputs(n, dtype);
  const optimizer = new NAdam([param], { weight_decay: 0.01, foreach: path === "foreach" }, { backend: typedArrayBackend({ profile }) });
  const times: number[] = [];
  for (const grad of grads) {
    param.grad = grad;
    const t0 = performance.now();
    optimizer.step();
    times.push(performance.now() - t0);
  }
  times.splice(0, WARMUP);
  return (median(times) * 1e6) / n; // ns per element
}

function timeSpec(n: number, dtype: DType, path: CodePath, profile: RoundingProfile): number {
  const { param, grads } = inputs(n, dtype);
  let data = param.toArray();
  let state: (NadamParamState | undefined)[] = [undefined];
  const times: number[] = [];
  for (const grad of grads) {
    const g = grad.toArray();
    const t0 = performance.now();
    const result = nadamStep([{ dtype, data, grad: g }], state, { ...NADAM_DEFAULTS, weight_decay: 0.01 }, { path, profile });
    times.push(performance.now() - t0);
    data = result.data[0]!;
    state = result.state;
  }
  times.splice(0, WARMUP);
  return (median(times) * 1e6) / n;
}

const rows: string[][] = [["dtype", "path", "profile", "elements", "typed-array ns/elem", "spec ns/elem", "speed-up"]];
for (const dtype of ["float32", "float64", "float16"] as const) {
  for (const path of ["forloop", "foreach"] as const) {
    for (const profile of ["vectorized", "default"] as const) {
      const n = 1_000_000;
      const typed = timeTyped(n, dtype, path, profile);
      const spec = timeSpec(n / 10, dtype, path, profile); // the oracle is slow: a tenth of the elements
      rows.push([dtype, path, profile, String(n), typed.toFixed(1), spec.toFixed(1), `${(spec / typed).toFixed(1)}x`]);
    }
  }
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`node ${process.version}, median of ${STEPS - WARMUP} steps after ${WARMUP} warm-up steps, weight_decay 0.01 (L2)`);
for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c]!)).join("  "));
