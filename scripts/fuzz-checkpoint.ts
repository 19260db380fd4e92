/**
 * npm run fuzz [-- RUNS [SEED]]: many more damaged state dict files than the
 * test's 2,000 (default 50,000). Prints counts, the slowest refusal and the
 * largest memory growth; exits 1 if the reader ever throws or hangs past 5 s.
 */
import fc from "fast-check";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { applyMutations, fuzzOnce, mutatePickle, mutation, type FuzzOutcome } from "../checkpoint/fuzz.ts";

const runs = Number(process.argv[2] ?? 50_000);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
const root = new URL("../golden/state-dicts/", import.meta.url).pathname;
const seeds = readdirSync(root)
  .filter((d) => !d.endsWith(".json"))
  .flatMap((v) => readdirSync(join(root, v)).filter((f) => /\.(pt|json)$/.test(f) && f !== "roundtrip.json").map((f) => ({ name: f, bytes: readFileSync(join(root, v, f)) })));

let refused = 0;
let slowest: (FuzzOutcome & { seed: string }) | undefined;
let largest: (FuzzOutcome & { seed: string }) | undefined;
const started = performance.now();
fc.assert(
  fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), (index, mutations, insidePickle) => {
    const { name, bytes } = seeds[index]!;
    const damaged = insidePickle && name.endsWith(".pt") ? mutatePickle(bytes, mutations) : applyMutations(bytes, mutations);
    const outcome = { ...fuzzOnce(name, damaged), seed: name };
    if (outcome.milliseconds > 5000) throw new Error(`${name}: ${outcome.milliseconds} ms`);
    if (!outcome.valid) {
      refused++;
      if (!slowest || outcome.milliseconds > slowest.milliseconds) slowest = outcome;
      if (!largest || outcome.rssGrowth > largest.rssGrowth) largest = outcome;
    }
  }),
  { numRuns: runs, seed },
);
console.log(`fuzz (seed ${seed}): ${runs} damaged files in ${((performance.now() - started) / 1000).toFixed(1)} s; ${refused} refused, ${runs - refused} still valid; no crash`);
console.log(`slowest refusal: ${slowest?.milliseconds.toFixed(1)} ms (${slowest?.seed}: ${JSON.stringify(slowest?.message.slice(0, 120))})`);
console.log(`largest RSS growth: ${((largest?.rssGrowth ?? 0) / 1e6).toFixed(1)} MB (${largest?.seed}: ${JSON.stringify(largest?.message.slice(0, 120))})`);
