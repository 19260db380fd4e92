/** The README's example runs as written and gives torch 2.6's numbers (AVX2, read off real torch). */
import { readFileSync } from "node:fs";
import ts from "typescript";
import { expect, test } from "vitest";
import { f32Hex } from "./float/bits.ts";

test("the README example runs", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toBeDefined();
  const spec = await import("./index.ts");
  // Run the snippet with its import bound to the real module.
  const body = ts.transpile(code!.replace(/^import .*$/m, "")).concat("\nreturn { data, state };");
  const run = new Function("NADAM_DEFAULTS", "nadamStep", body) as (...a: unknown[]) => { data: number[][]; state: { step: number }[] };
  const { data, state } = run(spec.NADAM_DEFAULTS, spec.nadamStep);
  expect(data[0]!.map(f32Hex)).toEqual(["3eff7588", "bf9fdd61"]);
  expect(state[0]!.step).toBe(1);
});
