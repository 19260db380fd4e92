#!/usr/bin/env zx
// npm run bench [-- speed|backends|kernels] [options]: NAdam's step time, each implementation beside its
// baselines in the same run. speed (the default): every backend beside torch and a C floor
// (scripts/bench/speed.ts); backends: the backends alone, and the ONNX Runtime per-step overhead;
// kernels: the typed-array kernels beside the spec.
$.verbose = true;
const [which = "speed", ...rest] = process.argv.slice(3);
const scripts = { speed: "speed", backends: "backends", kernels: "nadam-step" };
if (!(which in scripts)) {
  console.error(`npm run bench: unknown benchmark ${JSON.stringify(which)}: one of ${Object.keys(scripts).join(", ")}`);
  process.exit(2);
}
await $`tsx ${new URL(`./bench/${scripts[which]}.ts`, import.meta.url).pathname} ${rest}`;
