#!/usr/bin/env zx
// npm run bench: throughput of the built-in implementations, each beside its baseline in the same run.
$.verbose = true;
await $`tsx ${new URL("./bench/nadam-step.ts", import.meta.url).pathname}`;
