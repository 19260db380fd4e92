#!/usr/bin/env zx
// npm run bench [-- backends [--rounds N] [--only ID,ID] [--json FILE]]: throughput of the built-in
// implementations, each beside its baseline in the same run. With no argument: the typed-array
// kernels beside the spec, then every backend of the registry side by side.
$.verbose = true;
const [which, ...rest] = argv._.length ? process.argv.slice(3) : [];
const bench = (name) => new URL(`./bench/${name}.ts`, import.meta.url).pathname;
if (which === undefined || which === "kernels") await $`tsx ${bench("nadam-step")}`;
if (which === undefined || which === "backends") await $`tsx ${bench("backends")} ${rest}`;
