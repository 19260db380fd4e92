/**
 * `export-onnx`: the written model runs in ONNX Runtime, fed as its inputs
 * say, and gives the spec's step bit for bit; usage errors name what is wrong
 * and leave an existing file alone.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { onnxRuntimeCpu } from "../impl/index.ts";
import { NADAM_DEFAULTS } from "../spec/nadam/defaults.ts";
import { stepScalars } from "../spec/nadam/scalars.ts";
import { initialState, nadamStep } from "../spec/nadam/step.ts";
import { main } from "./main.ts";

async function run(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await main(["export-onnx", ...args], (line) => lines.push(line));
  return { code, lines };
}

const cpu = await onnxRuntimeCpu.availability();

describe("export-onnx", () => {
  test.skipIf(!cpu.available)(`the exported foreach float32 model, fed as its inputs are documented, is the spec's step${cpu.available ? "" : ` — skipped: ${cpu.reason}`}`, async () => {
    const file = join(mkdtempSync(join(tmpdir(), "export-onnx-")), "step.onnx");
    const { code, lines } = await run(["--out", file, "--path", "foreach", "--params", "2", "--weight-decay", "l2"]);
    expect(code).toBe(0);
    expect(lines[0]).toMatch(/step\.onnx: \d+ bytes, ONNX IR 8, opset 17/);
    expect(lines.join("\n")).toMatch(/bias_correction \[\]: for-loop: 1 - beta2\^step; foreach/);
    expect(lines.join("\n")).toMatch(/lengths \[2\]: int64/);

    const ort = (await import("onnxruntime-node" as string)) as typeof import("onnxruntime-node");
    const session = await ort.InferenceSession.create(readFileSync(file));
    const hyper = { ...NADAM_DEFAULTS, weight_decay: 0.01 };
    const params = [[0.5, -1.25, 3], [2, 0.125]].map((d) => d.map(Math.fround));
    const grads = [[0.1, 0.2, -0.3], [-1, 4]].map((d) => d.map(Math.fround));
    const f = Math.fround;
    const scalar = (x: number) => new ort.Tensor("float32", Float32Array.of(f(x)), []);
    const vector = (d: number[]) => new ort.Tensor("float32", Float32Array.from(d), [d.length]);
    const feeds: Record<string, import("onnxruntime-node").Tensor> = {
      lerp_weight: scalar(1 - hyper.betas[0]),
      beta2: scalar(hyper.betas[1]),
      one_minus_beta2: scalar(1 - hyper.betas[1]),
      eps: scalar(hyper.eps),
      weight_decay: scalar(hyper.weight_decay),
    };
    const s = stepScalars(hyper, "foreach", { step: 0, step_dtype: "float32", mu_product: 1, mu_product_dtype: "float32" });
    Object.assign(feeds, {
      bias_correction: scalar(s.biasCorrection2Sqrt),
      grad_step: scalar(s.gradStepSize),
      exp_avg_step: scalar(s.expAvgStepSize),
      lengths: new ort.Tensor("int64", BigInt64Array.from(params, (p) => BigInt(p.length)), [params.length]),
    });
    params.forEach((p, i) => {
      Object.assign(feeds, {
        [`param${i}`]: vector(p),
        [`grad${i}`]: vector(grads[i]!),
        [`exp_avg${i}`]: vector(p.map(() => 0)),
        [`exp_avg_sq${i}`]: vector(p.map(() => 0)),
      });
    });
    const out = await session.run(feeds);
    const spec = nadamStep(
      params.map((data, i) => ({ dtype: "float32", data, grad: grads[i]! })),
      params.map((p) => initialState("float32", p.length)),
      hyper,
      { path: "foreach", profile: "default" },
    );
    params.forEach((_, i) => {
      expect([...(out[`param${i}_out`]!.data as Float32Array)]).toEqual(spec.data[i]);
      expect([...(out[`exp_avg${i}_out`]!.data as Float32Array)]).toEqual(spec.state[i]!.exp_avg);
      expect([...(out[`exp_avg_sq${i}_out`]!.data as Float32Array)]).toEqual(spec.state[i]!.exp_avg_sq);
    });
    await session.release();
  });

  test.each([
    [["--bogus"], /unknown argument "--bogus"/],
    [["--out"], /--out needs a value/],
    [["--dtype", "complex64", "--out", "x.onnx"], /--dtype must be one of float32, float64, float16, bfloat16, not "complex64"/],
    [["--params", "0", "--out", "x.onnx"], /--params must be a whole number from 1 to 4096, not "0"/],
    [["--path", "forloop", "--params", "3", "--out", "x.onnx"], /for-loop path updates one param per run/],
    [["--path", "foreach"], /--out FILE\.onnx is required/],
  ])("usage error %j: exit 2, named", async (args, message) => {
    const { code, lines } = await run(args);
    expect(code).toBe(2);
    expect(lines[0]).toMatch(message);
  });

  test("a write that fails names the file and why; a good one replaces an existing file", async () => {
    const folder = mkdtempSync(join(tmpdir(), "export-onnx-"));
    const file = join(folder, "missing-folder", "step.onnx");
    const { code, lines } = await run(["--out", file]);
    expect(code).toBe(1);
    expect(lines[0]).toMatch(/cannot write .*missing-folder\/step\.onnx: ENOENT/);
    const existing = join(folder, "existing.onnx");
    writeFileSync(existing, "previous");
    expect((await run(["--out", existing])).code).toBe(0);
    expect(readFileSync(existing).subarray(0, 2)).toEqual(Buffer.from([0x08, 8]));
  });
});
