/**
 * ms per tfjs op at 4M float32 elements, for the ops the NAdam kernel runs
 * (kernel.ts), on each tfjs backend that runs here: which op dominates a step.
 * Run: npx tsx scripts/bench/tfjs-ops.ts [elements]
 */
import * as tf from "@tensorflow/tfjs-core";
import { fmaFor, FMA_BACKENDS, prepareFma } from "../../impl/backends/tfjs/fma.ts";
import { loadTfjs } from "../../impl/backends/tfjs/runtime.ts";

const N = Number(process.argv[2] ?? 4 * 1024 * 1024);
const REPEATS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const rows: string[][] = [];
for (const name of ["cpu", "wasm", "webgpu"] as const) {
  const { tf: loaded, reason } = await loadTfjs(name);
  if (loaded === undefined) {
    console.log(`tfjs-${name}: skipped: ${reason}`);
    continue;
  }
  await tf.setBackend(name);
  await prepareFma(tf, name, FMA_BACKENDS.includes(name) ? "vectorized" : "default");
  const fma = FMA_BACKENDS.includes(name) ? fmaFor(tf, name, "vectorized") : null;
  const a = tf.randomUniform([N], 0.5, 2, "float32", 1);
  const b = tf.randomUniform([N], 0.5, 2, "float32", 2);
  const c = tf.randomUniform([N], 0.5, 2, "float32", 3);
  const s = tf.scalar(0.999);
  const half = N / 2;
  const ops: [string, () => tf.Tensor | tf.Tensor[]][] = [
    ["add", () => tf.add(a, b)],
    ["sub", () => tf.sub(a, b)],
    ["mul", () => tf.mul(a, b)],
    ["mul by 0-d", () => tf.mul(a, s)],
    ["div", () => tf.div(a, b)],
    ["div by 0-d", () => tf.div(a, s)],
    ["sqrt", () => tf.sqrt(a)],
    ["neg", () => tf.neg(a)],
    ["concat (2 halves)", () => tf.concat([tf.slice(a, 0, half), tf.slice(a, half)])],
    ["split (2 halves)", () => tf.split(a, [half, half])],
    ...(fma ? ([["NadamFma32", () => fma(a, b, c)]] as [string, () => tf.Tensor][]) : []),
  ];
  for (const [label, op] of ops) {
    const times: number[] = [];
    for (let r = 0; r < REPEATS + 1; r++) {
      const t0 = performance.now();
      const out = op();
      const outs = Array.isArray(out) ? out : [out];
      const probe = tf.slice(tf.reshape(outs.at(-1)!, [-1]), [0], [1]);
      await probe.data();
      times.push(performance.now() - t0);
      tf.dispose([...outs, probe]);
    }
    rows.push([`tfjs-${name}`, label, median(times.slice(1)).toFixed(2)]);
  }
  tf.dispose([a, b, c, s]);
}
console.log(`node ${process.version}, ${N} float32 elements, median of ${REPEATS} after one warm-up, ms (the slice and one-element read that end each timing included)`);
const widths = [0, 1, 2].map((k) => Math.max(...rows.map((r) => r[k]!.length)));
for (const r of rows) console.log(r.map((cell, k) => (k === 2 ? cell.padStart(widths[k]!) : cell.padEnd(widths[k]!))).join("  "));
