import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { trainLayers, trainVariables } from "./tfjs-train.ts";

test("the README shows examples/tfjs-train.ts as it is", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const example = readFileSync(new URL("./tfjs-train.ts", import.meta.url), "utf8");
  expect(readme).toContain("```ts\n" + example + "```");
});

test("the tfjs example trains plain variables and a tf.layers model to y = 2x - 1 with nadam()", async () => {
  const variables = await trainVariables();
  expect(variables.loss).toBeLessThan(1e-8);
  expect(variables.weight).toBeCloseTo(2, 3);
  expect(variables.bias).toBeCloseTo(-1, 3);
  const layers = await trainLayers();
  expect(layers.loss).toBeLessThan(1e-8);
  expect(layers.prediction).toBeCloseTo(5, 3);
});
