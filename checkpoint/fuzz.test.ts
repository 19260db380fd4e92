/**
 * 2,000 damaged copies of real state dict files (torch.save'd .pt and their
 * JSON): each is judged valid or refused with problems, in bounded time; the
 * reader never throws anything else. npm run fuzz runs many more.
 */
import fc from "fast-check";
import { afterAll, expect, test } from "vitest";
import { damage, fixtureSeeds, fuzzOnce, mutation, type FuzzOutcome } from "./fuzz.ts";

const seeds = fixtureSeeds();

const outcomes: (FuzzOutcome & { seed: string })[] = [];

test("2,000 mutated state dict files: valid or refused, never a crash, each within a second", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (seed, mutations, insidePickle) => {
      const { name } = seeds[seed]!;
      const outcome = fuzzOnce(name, damage(seeds[seed]!, mutations, insidePickle));
      outcomes.push({ ...outcome, seed: name });
      expect(outcome.milliseconds).toBeLessThan(1000);
    }),
    { numRuns: 2000 },
  );
  expect(outcomes.length).toBeGreaterThanOrEqual(2000);
});

afterAll(() => {
  const refused = outcomes.filter((o) => !o.valid);
  const slowest = [...refused].sort((a, b) => b.milliseconds - a.milliseconds)[0];
  const largest = [...refused].sort((a, b) => b.rssGrowth - a.rssGrowth)[0];
  console.log(
    `fuzz: ${outcomes.length} mutated files, ${refused.length} refused, ${outcomes.length - refused.length} still valid; ` +
      `slowest refusal ${slowest?.milliseconds.toFixed(1)} ms (${slowest?.seed}: ${slowest?.message.slice(0, 80)}); ` +
      `largest RSS growth ${((largest?.rssGrowth ?? 0) / 1e6).toFixed(1)} MB (${largest?.seed}: ${largest?.message.slice(0, 80)})`,
  );
});
