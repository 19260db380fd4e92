/**
 * npm run fuzz [-- RUNS [SEED]]: many more damaged state dict files than the
 * test's 2,000 (default 50,000). Prints counts, the slowest refusal and the
 * largest memory growth; exits 1 if the reader ever throws or hangs past 5 s.
 */
import fc from "fast-check";
import { damage, fixtureSeeds, fuzzOnce, mutation, type FuzzOutcome } from "../checkpoint/fuzz.ts";

const runs = Number(process.argv[2] ?? 50_000);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
const seeds = fixtureSeeds();

let refused = 0;
let slowest: (FuzzOutcome & { seed: string }) | undefined;
let largest: (FuzzOutcome & { seed: string }) | undefined;
const started = performance.now();
fc.assert(
  fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), (index, mutations, insidePickle) => {
    const { name } = seeds[index]!;
    const outcome = { ...fuzzOnce(name, damage(seeds[index]!, mutations, insidePickle)), seed: name };
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
