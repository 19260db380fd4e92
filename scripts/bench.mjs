#!/usr/bin/env zx
// npm run bench [-- speed|kernels|checkpoints] [options]: NAdam's step time, each implementation beside its
// baselines in the same run. speed (the default): every backend beside torch and a C floor
// (scripts/bench/speed.ts; --only, --shapes, --rss...); kernels: the typed-array kernels beside the spec;
// checkpoints: validate and convert of files over 4 GiB beside cat, with peak memory (scripts/bench/checkpoints.ts).
$.verbose = true;
// the benchmark's name, when the first argument is one; options alone go to the default
const given = process.argv.slice(3);
const [which, ...rest] = given[0] === undefined || given[0].startsWith("--") ? ["speed", ...given] : given;
const scripts = { speed: "speed", kernels: "nadam-step", checkpoints: "checkpoints" };
if (!(which in scripts)) {
  console.error(`npm run bench: unknown benchmark ${JSON.stringify(which)}: one of ${Object.keys(scripts).join(", ")}`);
  process.exit(2);
}
await $`tsx ${new URL(`./bench/${scripts[which]}.ts`, import.meta.url).pathname} ${rest}`;
