/** The committed standalone validators are what the schemas compile to now (npm run validators). */
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { declarationSource, validatorSource, VALIDATORS } from "./validators.ts";

test.each(VALIDATORS.map((v) => [v.schema, v]))("%s's validator is fresh", (_schema, { schema, module }) => {
  const root = new URL("../../", import.meta.url);
  expect(readFileSync(new URL(module, root), "utf8"), `stale: run npm run validators`).toBe(validatorSource(schema));
  expect(readFileSync(new URL(module.replace(/\.js$/, ".d.ts"), root), "utf8")).toBe(declarationSource());
});
