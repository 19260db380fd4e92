import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { NAdam, Tensor, onnxRuntimeCpu, typedArrayBackend } from "../impl/index.ts";
import { train } from "./linear-regression.ts";

test("the README shows examples/linear-regression.ts as it is", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const example = readFileSync(new URL("./linear-regression.ts", import.meta.url), "utf8");
  expect(readme).toContain("```ts\n" + example + "```");
});

test("the linear regression example trains: the loss falls and the fit is y = 2x - 1", () => {
  const { losses, weight, bias } = train();
  expect(losses).toHaveLength(300);
  expect(losses.at(-1)!).toBeLessThan(losses[0]! * 1e-6);
  expect(weight).toBeCloseTo(2, 3);
  expect(bias).toBeCloseTo(-1, 3);
});

test("the README shows examples/spec-one-step.ts as it is, and it gives torch 2.6's bits", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const example = readFileSync(new URL("./spec-one-step.ts", import.meta.url), "utf8");
  expect(readme).toContain("```ts\n" + example + "```");
  const { oneStep } = await import("./spec-one-step.ts");
  const { f32Hex } = await import("../spec/float/bits.ts");
  // torch 2.6.0, AVX2: p = tensor([0.5, -1.25]); NAdam([p], lr=1e-3); grad [0.1, -0.2]; one step.
  expect(oneStep().data[0]!.map(f32Hex)).toEqual(["3eff7588", "bf9fdd61"]);
});

test.each([
  ["linear-regression.ts", /^loss \d+\.\d{4} -> 0\.0{5}\d; weight 2\.0000, bias -1\.0000$/],
  ["spec-one-step.ts", /^param 0\.498943567276001, -1\.2489434480667114; step 1, mu_product 0\.4500734806060791$/], // torch 2.6's bits
])("examples/%s prints its result when run", (file, printed) => {
  const result = spawnSync(process.execPath, ["--import", "tsx", new URL(`./${file}`, import.meta.url).pathname], { encoding: "utf8" });
  expect(result.stderr).toBe("");
  expect(result.stdout.trim()).toMatch(printed);
});

test("the README shows examples/onnx-runtime.ts as it is", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  expect(readme).toContain("```ts\n" + readFileSync(new URL("./onnx-runtime.ts", import.meta.url), "utf8") + "```");
});

const onnxRuntime = await onnxRuntimeCpu.availability();
test.skipIf(!onnxRuntime.available)(`examples/onnx-runtime.ts minimizes |w|² with the same bits as the typed-array backend${onnxRuntime.available ? "" : ` — skipped: ${onnxRuntime.reason}`}`, async () => {
  const { minimize } = await import("./onnx-runtime.ts");
  const onnx = await minimize();
  expect(onnx).toEqual(await minimize(typedArrayBackend({ profile: "vectorized" })));
  expect(onnx.every((x) => Math.abs(x) < 0.1)).toBe(true);
  const printed = spawnSync(process.execPath, ["--import", "tsx", new URL("./onnx-runtime.ts", import.meta.url).pathname], { encoding: "utf8" });
  expect(printed.stdout.trim()).toBe(onnx.join(", "));
});

test("the README shows examples/wasm-simd.ts as it is; it gives the typed-array backend's bits and prints them", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  expect(readme).toContain("```ts\n" + readFileSync(new URL("./wasm-simd.ts", import.meta.url), "utf8") + "```");
  const { minimize } = await import("./wasm-simd.ts");
  const w = Tensor.from([0.5, -1.5, 2], "float32");
  const optimizer = new NAdam([w], { lr: 0.05, weight_decay: 0.01 }, { backend: typedArrayBackend({ profile: "vectorized" }) });
  for (let step = 0; step < 100; step++) {
    w.grad = Tensor.from(w.toArray().map((x) => 2 * x), "float32");
    optimizer.step();
  }
  const wasm = minimize();
  expect(wasm).toEqual(w.toArray());
  expect(wasm.every((x) => Math.abs(x) < 0.1)).toBe(true);
  const printed = spawnSync(process.execPath, ["--import", "tsx", new URL("./wasm-simd.ts", import.meta.url).pathname], { encoding: "utf8" });
  expect(printed.stdout.trim()).toBe(wasm.join(", "));
});
