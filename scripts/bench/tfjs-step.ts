/**
 * ms per NAdam step at 4M float32 params, as 1 tensor and as 1,024 tensors,
 * for each tfjs backend that runs here (the native front on tf.Variables, both
 * paths, each profile the backend is exact under), beside the typed-array
 * backend in the same run. Run: npx tsx scripts/bench/tfjs-step.ts [elements]
 *
 * A timed step ends with a one-element read of the last param, so queued GPU
 * work is counted; the median of the timed steps is reported.
 */
import * as tf from "@tensorflow/tfjs-core";
import { NAdam, Tensor, typedArrayBackend } from "../../impl/index.ts";
import { nadam } from "../../impl/backends/tfjs/optimizer.ts";
import { loadTfjs, type TfjsBackendName } from "../../impl/backends/tfjs/runtime.ts";
import type { KernelChoice } from "../../impl/backends/tfjs/update.ts";
import type { CodePath, RoundingProfile } from "../../spec/nadam/types.ts";

const TOTAL = Number(process.argv[2] ?? 4 * 1024 * 1024);
const STEPS = 4;
const WARMUP = 1;
const LAYOUTS = [1, 1024];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function values(n: number, salt: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(i * 0.37 + salt) * 0.1;
  return out;
}

async function timeTfjs(name: TfjsBackendName, tensors: number, path: CodePath, profile: RoundingProfile, kernel: KernelChoice): Promise<number> {
  await tf.setBackend(name);
  const size = TOTAL / tensors;
  const variables = Array.from({ length: tensors }, (_, i) => tf.variable(tf.tensor1d(values(size, i))));
  const grads = Array.from({ length: tensors }, (_, i) => tf.tensor1d(values(size, i + 0.5)));
  const optimizer = await nadam({ weightDecay: 0.01, foreach: path === "foreach", profile, kernel }).ready();
  const named = Object.fromEntries(variables.map((v, i) => [v.name, grads[i]!]));
  const times: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const t0 = performance.now();
    optimizer.applyGradients(named);
    const probe = tf.slice(variables.at(-1)!, [0], [1]);
    await probe.data();
    probe.dispose();
    times.push(performance.now() - t0);
  }
  optimizer.dispose();
  tf.dispose([...variables, ...grads]);
  return median(times.slice(WARMUP));
}

function timeTyped(tensors: number, path: CodePath, profile: RoundingProfile): number {
  const size = TOTAL / tensors;
  const params = Array.from({ length: tensors }, (_, i) => new Tensor("float32", [size], values(size, i)));
  params.forEach((p, i) => (p.grad = new Tensor("float32", [size], values(size, i + 0.5))));
  const optimizer = new NAdam(params, { weight_decay: 0.01, foreach: path === "foreach" }, { backend: typedArrayBackend({ profile }) });
  const times: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const t0 = performance.now();
    optimizer.step();
    times.push(performance.now() - t0);
  }
  return median(times.slice(WARMUP));
}

const rows: string[][] = [["backend", "path", "profile", ...LAYOUTS.map((n) => `ms/step, ${n} tensor${n > 1 ? "s" : ""}`)]];
const print = () => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log(rows.map((r) => r.map((cell, c) => cell.padStart(widths[c]!)).join("  ")).join("\n"));
};
console.log(`node ${process.version}, ${TOTAL} float32 params, median of ${STEPS - WARMUP} steps after ${WARMUP} warm-up, weight_decay 0.01 (L2)`);
for (const path of ["forloop", "foreach"] as const) {
  for (const profile of ["default", "vectorized"] as const) {
    rows.push(["typed-array", path, profile, ...LAYOUTS.map((n) => timeTyped(n, path, profile).toFixed(1))]);
    console.log(rows.at(-1)!.join("  "));
  }
}
for (const name of ["cpu", "wasm", "webgpu"] as const) {
  const loaded = await loadTfjs(name);
  if (loaded.tf === undefined) {
    rows.push([`tfjs-${name}`, "-", "-", `skipped: ${loaded.reason}`, ""]);
    continue;
  }
  for (const kernel of name === "webgpu" ? (["ops", "fused"] as const) : (["ops"] as const)) {
    for (const path of ["forloop", "foreach"] as const) {
      for (const profile of name === "webgpu" ? (["default"] as const) : (["default", "vectorized"] as const)) {
        const cells: string[] = [];
        for (const n of LAYOUTS) cells.push((await timeTfjs(name, n, path, profile, kernel)).toFixed(1));
        rows.push([`tfjs-${name} (${kernel})`, path, profile, ...cells]);
        console.log(rows.at(-1)!.join("  "));
      }
    }
  }
}
print();
