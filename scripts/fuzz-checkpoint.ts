/**
 * npm run fuzz [-- RUNS [SEED]]: many more damaged and made-up state dict files
 * than the test's (default 50,000): half real files damaged byte by byte
 * (checkpoint/fuzz.ts's mutations), half pickles made up structurally (values
 * shared through the memo, long APPENDS, deep nesting, tensors used many
 * times). Prints counts, the slowest refusal, the largest memory growth and the
 * process's peak memory; exits 1 if the reader ever throws anything but a
 * refusal. Its memory is bounded by the caller (checkpoint/fuzz.test.ts runs it
 * under a heap limit and checks the peak).
 */
import fc from "fast-check";
import { damage, fixtureSeeds, fuzzOnce, mutation, shape, structuralFile, type FuzzOutcome } from "../checkpoint/fuzz.ts";

const runs = Number(process.argv[2] ?? 50_000);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
const seeds = fixtureSeeds();

let refused = 0;
let structural = 0;
let slowest: (FuzzOutcome & { seed: string }) | undefined;
let largest: (FuzzOutcome & { seed: string }) | undefined;
const note = (outcome: FuzzOutcome & { seed: string }) => {
  if (outcome.valid) return;
  refused++;
  if (!slowest || outcome.milliseconds > slowest.milliseconds) slowest = outcome;
  if (!largest || outcome.rssGrowth > largest.rssGrowth) largest = outcome;
};
const started = performance.now();
const input = fc.oneof(
  fc.record({ kind: fc.constant("damaged" as const), index: fc.integer({ min: 0, max: seeds.length - 1 }), mutations: fc.array(mutation, { minLength: 1, maxLength: 6 }), insidePickle: fc.boolean() }),
  fc.record({ kind: fc.constant("structural" as const), shape }),
);
fc.assert(
  fc.property(input, (x) => {
    if (x.kind === "damaged") {
      const { name } = seeds[x.index]!;
      note({ ...fuzzOnce(name, damage(seeds[x.index]!, x.mutations, x.insidePickle)), seed: name });
    } else {
      structural++;
      note({ ...fuzzOnce("structural.pt", structuralFile(x.shape)), seed: `structural ${JSON.stringify(x.shape).slice(0, 80)}` });
    }
  }),
  { numRuns: runs, seed },
);
console.log(`fuzz (seed ${seed}): ${runs} files (${structural} made up structurally) in ${((performance.now() - started) / 1000).toFixed(1)} s; ${refused} refused, ${runs - refused} valid; no crash`);
console.log(`slowest refusal: ${slowest?.milliseconds.toFixed(1)} ms (${slowest?.seed}: ${JSON.stringify(slowest?.message.slice(0, 120))})`);
console.log(`largest RSS growth: ${((largest?.rssGrowth ?? 0) / 1e6).toFixed(1)} MB (${largest?.seed}: ${JSON.stringify(largest?.message.slice(0, 120))})`);
console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
