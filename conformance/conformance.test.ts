/**
 * The suite judged on ports whose answers we know: the built-in ones, the two
 * example ports over the subprocess protocol (and each of their deliberately
 * broken variants, which must fail with the right diagnosis), offline files,
 * expectation files, the reports and the CLI.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, test } from "vitest";
import { main } from "../cli/main.ts";
import { GOLDEN_CUDA_DIR } from "../golden/load.ts";
import { CPU_ROUNDING_PROFILES } from "../spec/nadam/types.ts";
import { hexToTensor, selectCases } from "./cases.ts";
import { offlinePort, recordingPort } from "./offline.ts";
import { DEFAULT, EXACT } from "./policy.ts";
import { junit } from "./report/junit.ts";
import { html } from "./report/html.ts";
import { specPort } from "./spec-port.ts";
import { subprocessPort } from "./subprocess.ts";
import { UnsupportedError, type Port } from "./port.ts";
import { conformant, counts, runSuite } from "./suite.ts";
import { MISTAKES, type MistakeName } from "./mistakes.ts";
import type { RoundingProfile } from "../spec/nadam/types.ts";
import { backendPort, builtinPort } from "./builtin.ts";
import { portFrom } from "./cli.ts";
import { matrix } from "./report/console.ts";
import { BACKENDS } from "../impl/backends/index.ts";
import type { BackendEntry } from "../impl/backend.ts";

const here = new URL(".", import.meta.url).pathname;
const JS_PORT = ["node", join(here, "examples/js-port/nadam-port.mjs")];
const PY_PORT = ["python3", join(here, "examples/python-port/nadam_port.py")];

describe("built-in ports", () => {
  // The NAdam API's parity with PyTorch: every torch 2.6 golden case (options, groups,
  // hyper-parameter changes, add_param_group, state_dict reloads through the JSON
  // encoding) and every closed-loop run, through impl/'s public API, bit for bit.
  test("the typed-array implementation passes `exact` on every case it supports, both profiles", async () => {
    const report = await runSuite([builtinPort("builtin:typed-array")], { policy: EXACT });
    const results = report.ports[0]!.results;
    expect(results.length).toBe(selectCases().length);
    expect(results.filter((r) => r.status !== "pass").map((r) => `${r.id} ${r.profile}: ${r.firstDivergence ?? r.reason}`)).toEqual([]);
  });
});

describe("torch's CUDA recordings as the corpus (--corpus golden/cuda)", () => {
  const run = async (port: string) => {
    const lines: string[] = [];
    const status = await main(["check", "--port", port, "--corpus", GOLDEN_CUDA_DIR, "--id", "options/defaults/*", "--policy", "exact", "--random", "0"], (l) => lines.push(l));
    return { status, rows: lines.join("\n").split("\n") };
  };

  test("typed-array, which follows `cuda`, passes them exact", async () => {
    const { status, rows } = await run("builtin:typed-array");
    expect(rows.some((l) => /^typed-array\s+8\/8\s+8\/8$/.test(l))).toBe(true);
    expect(status).toBe(0);
  });

  test("wasm-simd, a CPU backend, skips every one of them under exact, and a run that judged nothing does not pass", async () => {
    const { status, rows } = await run("builtin:wasm-simd");
    expect(rows.some((l) => /^wasm-simd\s+0\/0 S8\s+0\/0 S8$/.test(l))).toBe(true);
    expect(status).not.toBe(0);
  });
});

describe("the registry's backends as ports", () => {
  const unavailable: BackendEntry = {
    ...BACKENDS[0]!,
    id: "not-here",
    availability: async () => ({ available: false, reason: "no WebGPU adapter (a stand-in for a backend this machine cannot run)" }),
    create: async () => {
      throw new Error("an unavailable backend must not be created");
    },
  };

  test("every registered backend is a built-in port, and `--builtin` runs them all", async () => {
    const lines: string[] = [];
    expect(await main(["check", "--builtin", "--id", "options/defaults/float32/*", "--policy", "exact", "--random", "0"], (l) => lines.push(l))).toBe(0);
    const rows = lines.join("\n").split("\n");
    for (const entry of BACKENDS) {
      const availability = await entry.availability();
      // 2 cases per CPU profile (the corpus has no others); a backend exact under one skips the other's cases under `exact`
      const cpuProfiles = entry.supports.profiles.filter((p) => CPU_ROUNDING_PROFILES.includes(p));
      const cell = cpuProfiles.length === 2 ? "4/4" : "2/2 S2";
      const row = availability.available ? new RegExp(`^${entry.id}\\s+${cell}\\s+${cell}$`) : new RegExp(`^${entry.id}\\s+skipped: `);
      expect(rows.some((l) => row.test(l)), entry.id).toBe(true);
    }
  });

  test("a backend that cannot run here is reported skipped with its reason, never passed", async () => {
    const filter = { ids: ["options/defaults/float32/forloop"] };
    const report = await runSuite([specPort(), backendPort(unavailable)], { policy: EXACT, filter });
    const skipped = report.ports[1]!;
    expect(skipped.skipped).toBe("no WebGPU adapter (a stand-in for a backend this machine cannot run)");
    expect(skipped.results).toEqual([]);
    expect(matrix(report)).toMatch(/not-here\s+skipped: no WebGPU adapter/);
    expect(junit(report)).toContain('<skipped message="no WebGPU adapter');
    expect(conformant(report)).toBe(true); // the oracle was judged and passed
    // Alone, it judges nothing: that is not a pass.
    const alone = await runSuite([backendPort(unavailable)], { policy: EXACT, filter });
    expect(conformant(alone)).toBe(false);
    expect(matrix(alone)).toContain("no case was judged");
  });
});

describe("nadam-port/2", () => {
  const filter = { ids: ["options/maximize/float32/forloop", "options/decoupled-weight-decay/float32/forloop", "options/defaults/float32/forloop"], profiles: ["default" as const] };

  test("a port declares the options it lacks, or answers `unsupported` when asked: both are skips with the reason", async () => {
    const spec = specPort();
    const lacking: Port = {
      name: "lacks maximize and decoupled_weight_decay",
      capabilities: async () => ({ ...(await spec.capabilities()), unsupported_options: ["maximize"] }),
      async open(request) {
        if (request.param_groups.some((g) => g.options.decoupled_weight_decay === true)) throw new UnsupportedError("no decoupled_weight_decay here");
        return spec.open(request);
      },
    };
    const results = (await runSuite([lacking], { policy: EXACT, filter })).ports[0]!.results;
    const by = Object.fromEntries(results.map((r) => [r.id, r]));
    expect(by["options/maximize/float32/forloop"]).toMatchObject({ status: "skip", reason: "the port has no maximize option" });
    expect(by["options/decoupled-weight-decay/float32/forloop"]).toMatchObject({ status: "skip", reason: "no decoupled_weight_decay here" });
    expect(by["options/defaults/float32/forloop"]?.status).toBe("pass");
  });

  test("over the subprocess protocol too; a nadam-port/1 hello is accepted, another version refused by name", async () => {
    const fake = (protocol: string) =>
      `const rl = require("readline").createInterface({ input: process.stdin });
       rl.on("line", (line) => {
         const m = JSON.parse(line);
         const answer = (fields) => console.log(JSON.stringify({ id: m.id, ...fields }));
         if (m.op === "hello") answer({ ok: true, protocol: ${JSON.stringify(protocol)}, name: "fake", capabilities: { dtypes: ["float32"], paths: ["forloop"], profiles: ["default"], features: [], unsupported_options: ["maximize"] } });
         else if (m.op === "open") answer({ ok: false, error: { type: "unsupported", message: "this fake runs nothing" } });
         else { answer({ ok: true }); if (m.op === "bye") process.exit(0); }
       });`;
    const v2 = await runSuite([subprocessPort(["node", "-e", fake("nadam-port/2")])], { policy: EXACT, filter });
    expect(v2.ports[0]!.results.map((r) => [r.id, r.status, r.reason])).toEqual([
      ["options/decoupled-weight-decay/float32/forloop", "skip", "this fake runs nothing"],
      ["options/defaults/float32/forloop", "skip", "this fake runs nothing"],
      ["options/maximize/float32/forloop", "skip", "the port has no maximize option"],
    ]);
    const v1 = await runSuite([subprocessPort(["node", "-e", fake("nadam-port/1")])], { policy: EXACT, filter });
    expect(v1.ports[0]!.error).toBeUndefined();
    const v9 = await runSuite([subprocessPort(["node", "-e", fake("nadam-port/9")])], { policy: EXACT, filter });
    expect(v9.ports[0]!.error).toBe('the port speaks "nadam-port/9"; the suite speaks nadam-port/2 and accepts nadam-port/1, nadam-port/2');
  });
});

describe("the default policy's claims (conformance/TOLERANCE.md)", () => {
  test("torch 2.6 under the other CPU profile, or the other code path, passes", async () => {
    const ports = [
      specPort({ profile: "default", name: "always NO AVX" }),
      specPort({ profile: "vectorized", name: "always AVX2" }),
      specPort({ path: "forloop", name: "always for-loop" }),
      specPort({ path: "foreach", name: "always foreach" }),
    ];
    const report = await runSuite(ports, { policy: DEFAULT, filter: { tags: ["options", "structure", "long", "edge", "closed-loop"] } });
    expect(report.ports.flatMap((p) => p.results.filter((r) => r.status !== "pass").map((r) => `${p.name} ${r.id} ${r.profile}: ${r.firstDivergence}`))).toEqual([]);
    // The policy did work: each port was off torch's own recording somewhere.
    for (const p of report.ports) expect(p.results.some((r) => r.comparison?.bitIdentical === false)).toBe(true);
  });

  test("torch 1.13's formula fails, and each path is named for what it does differently", async () => {
    const ids = ["options/defaults/float32/*", "options/lr-1e-3/float64/*", "long/2000-steps/float32/forloop", "edge/inf-grads/float32/*"];
    const report = await runSuite([specPort({ formula: "torch-1.13", name: "torch 1.13 formula" })], { policy: EXACT, filter: { ids, profiles: ["default"] } });
    const results = report.ports[0]!.results;
    expect(results.length).toBe(7);
    expect(results.every((r) => r.status === "fail")).toBe(true);
    // The for-loop path applies mu twice and updates exp_avg with mul + add; the foreach path only the latter.
    for (const r of results) {
      expect(r.diagnosis?.mistakes, r.id).toEqual(r.path === "forloop" ? ["old-mu-product-next", "exp-avg-mul-add-instead-of-lerp"] : ["exp-avg-mul-add-instead-of-lerp"]);
      expect(r.diagnosis?.distance, r.id).toBe(0);
    }
  });

  test("under exact, a divergence is told in bits and ULPs apart, never as a scaled figure", async () => {
    const report = await runSuite([specPort({ profile: "default", name: "always NO AVX" })], { policy: EXACT, filter: { ids: ["options/defaults/float32/forloop"], profiles: ["vectorized"] } });
    const message = report.ports[0]!.results[0]!.firstDivergence!;
    expect(message).toMatch(/^step \d+: .+ = -?[\d.e-]+ \(0x[0-9a-f]{8}\), expected -?[\d.e-]+ \(0x[0-9a-f]{8}\) \(\d+ float32 ULPs? apart; policy exact\)$/);
    expect(message).not.toContain("at scale");
  });

  test("under default, a mistake is named on top of the torch sibling the port is nearest, even when NaN and Inf tie them all", async () => {
    // torch 1.13's foreach path under AVX2, judged on the NO AVX recording: its exp_avg turns Inf where torch 2's is NaN.
    const port = specPort({ formula: "torch-1.13", profile: "vectorized", name: "torch 1.13 formula, AVX2" });
    const report = await runSuite([port], { policy: DEFAULT, filter: { ids: ["edge/inf-grads/float32/foreach", "options/defaults/float64/forloop"], profiles: ["default"] } });
    const by = Object.fromEntries(report.ports[0]!.results.map((r) => [r.id, r]));
    expect(by["edge/inf-grads/float32/foreach"]?.diagnosis?.mistakes).toEqual(["exp-avg-mul-add-instead-of-lerp"]);
    expect(by["options/defaults/float64/forloop"]?.diagnosis?.mistakes).toEqual(["old-mu-product-next", "exp-avg-mul-add-instead-of-lerp"]);
  });

  test("torch 2.6 under the other CPU profile is named profiles-swapped, nothing else", async () => {
    const report = await runSuite([specPort({ profile: "default", name: "always NO AVX" })], { policy: EXACT, filter: { tags: ["options"], dtypes: ["float32"], profiles: ["vectorized"] } });
    const failed = report.ports[0]!.results.filter((r) => r.status === "fail");
    expect(failed.length).toBeGreaterThan(10);
    expect(new Set(failed.map((r) => r.diagnosis?.mistake))).toEqual(new Set(["profiles-swapped"]));
  });
});

describe.each([
  ["plain JavaScript", JS_PORT],
  ["plain Python", PY_PORT],
])("the %s example port, over the subprocess protocol", (_name, command) => {
  test("passes the default policy on every case it supports, and skips the rest with a reason", async () => {
    const report = await runSuite([subprocessPort(command)], { policy: DEFAULT });
    const results = report.ports[0]!.results;
    expect(results.filter((r) => r.status === "fail" || r.status === "error").map((r) => `${r.id}: ${r.firstDivergence ?? r.reason}`)).toEqual([]);
    expect(results.filter((r) => r.status === "pass").length).toBeGreaterThanOrEqual(350);
    // It follows the NO AVX profile only; the default policy judges it on the AVX2 recordings too.
    expect(report.ports[0]!.capabilities!.profiles).toEqual(["default"]);
    expect(results.filter((r) => r.profile === "vectorized" && r.status === "pass").length).toBeGreaterThan(150);
    const skipped = results.filter((r) => r.status === "skip");
    expect(skipped.length).toBeGreaterThan(0);
    expect(skipped.every((r) => /does not support|lacks/.test(r.reason ?? ""))).toBe(true);
  });

  // Each mistake on a case that shows it, under the policy and profile it shows under (the
  // rounding-sized ones only under `exact`; profiles-swapped declares vectorized, computes NO AVX).
  const showcase: Record<MistakeName, [string, "exact" | "default", RoundingProfile]> = {
    "old-mu-product-next": ["options/defaults/float32/forloop", "default", "default"],
    "exp-avg-mul-add-instead-of-lerp": ["options/defaults/float64/forloop", "exact", "default"],
    "weight-decay-mode-swapped": ["options/weight-decay/float32/forloop", "default", "default"],
    "maximize-sign": ["options/maximize/float32/forloop", "default", "default"],
    "bias-correction-off-by-one": ["options/defaults/float32/forloop", "default", "default"],
    "step-counted-from-zero": ["options/defaults/float32/forloop", "default", "default"],
    "eps-inside-sqrt": ["options/eps-1e-3/float32/forloop", "default", "default"],
    "mu-product-in-float64": ["options/defaults/float64/forloop", "default", "default"],
    "keras-optax-formula": ["options/defaults/float32/forloop", "default", "default"],
    "paths-swapped": ["structure/large-params/float32/forloop", "exact", "default"],
    "profiles-swapped": ["options/defaults/float32/forloop", "exact", "vectorized"],
  };
  test("covers every known mistake", () => {
    expect(Object.keys(showcase).sort()).toEqual(MISTAKES.map((m) => m.name).sort());
  });
  test.each(Object.entries(showcase))("with the mistake %s, it fails with that diagnosis", async (mistake, [id, policy, profile]) => {
    const report = await runSuite([subprocessPort([...command, "--mistake", mistake])], { policy: policy === "exact" ? EXACT : DEFAULT, filter: { ids: [id], profiles: [profile] } });
    const [result] = report.ports[0]!.results;
    expect(result?.status).toBe("fail");
    expect(result?.firstDivergence).toMatch(/^step \d+: /);
    expect(result?.diagnosis?.mistake).toBe(mistake);
  });
});

test("the plain Python port is bit-exact under the default (NO AVX) profile", async () => {
  const report = await runSuite([subprocessPort(PY_PORT)], { policy: EXACT, filter: { profiles: ["default"], tags: ["options", "structure", "edge"] } });
  const results = report.ports[0]!.results;
  expect(results.filter((r) => r.status === "fail").map((r) => r.id)).toEqual([]);
  expect(results.filter((r) => r.status === "pass").length).toBeGreaterThan(100);
});

test("every protocol message, both ways, matches conformance/protocol.schema.json", async () => {
  const schema = JSON.parse(readFileSync(join(here, "protocol.schema.json"), "utf8")) as object;
  const validate = new Ajv2020({ strict: false, allowUnionTypes: true }).compile(schema);
  const problems: string[] = [];
  let seen = 0;
  const port = subprocessPort(JS_PORT, {
    onMessage: (direction, message) => {
      seen++;
      const label = String(message.op ?? message.id);
      if (!validate(message)) problems.push(`${direction} ${label}: ${JSON.stringify(validate.errors?.slice(0, 2))}`);
    },
  });
  await runSuite([port], { policy: DEFAULT, filter: { ids: ["structure/add-param-group/float32/forloop", "structure/state-dict-reload/float64/foreach", "options/tensor-lr/float32/forloop"] } });
  expect(problems).toEqual([]);
  expect(seen).toBeGreaterThan(50);
});

test("offline: answers recorded from a port are judged the same as the port live", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nadam-offline-"));
  const filter = { tags: ["structure"], dtypes: ["float32" as const] };
  const live = await runSuite([recordingPort(subprocessPort(JS_PORT), dir)], { policy: DEFAULT, filter });
  const offline = await runSuite([offlinePort(dir)], { policy: DEFAULT, filter });
  const statuses = (r: typeof live) => r.ports[0]!.results.map((x) => `${x.id}/${x.profile}: ${x.status}`);
  expect(statuses(offline)).toEqual(statuses(live));
  expect(live.ports[0]!.results.filter((r) => r.status === "pass").length).toBeGreaterThan(10);
});

test("record writes a trajectory when its session ends, not again at every step (which made recording quadratic)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nadam-record-"));
  const port = recordingPort(specPort(), dir);
  await port.capabilities();
  const [c] = selectCases({ ids: ["long/2000-steps/float32/forloop"], profiles: ["default"] });
  const golden = c!.source.kind === "golden" ? c!.source.golden : undefined;
  const request = { case: { id: c!.id, profile: c!.profile }, default_dtype: c!.default_dtype, foreach: false, profile: c!.profile, params: golden!.params.map((p) => ({ name: p.name, value: hexToTensor(p.init.dtype, p.init.shape, p.init.hex) })), param_groups: [{ options: {}, params: [0] }] };
  const session = await port.open(request);
  const file = join(dir, "long__2000-steps__float32__forloop.default.json");
  for (const step of golden!.steps.slice(0, 3)) await session.step(step.grads.map((g, i) => (g === null ? null : hexToTensor(c!.dtype, golden!.params[i]!.init.shape, g))));
  expect(existsSync(file)).toBe(false);
  await session.close();
  expect((JSON.parse(readFileSync(file, "utf8")) as { steps: unknown[] }).steps).toHaveLength(3);
});

test("offline: what was recorded is judged, and what was not is skipped as not recorded", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nadam-offline-part-"));
  await runSuite([recordingPort(subprocessPort(JS_PORT), dir)], { policy: DEFAULT, filter: { ids: ["options/defaults/float32/forloop"] } });
  const report = await runSuite([offlinePort(dir)], { policy: DEFAULT, filter: { ids: ["options/defaults/float32/*"] } });
  const by = Object.fromEntries(report.ports[0]!.results.map((r) => [`${r.id} ${r.profile}`, r]));
  expect(by["options/defaults/float32/forloop default"]?.status).toBe("pass");
  expect(by["options/defaults/float32/foreach default"]).toMatchObject({ status: "skip", reason: `not recorded in ${dir}` });
  expect(conformant(report)).toBe(true);
});

describe("the command line listens", () => {
  const run = async (...argv: string[]) => {
    const lines: string[] = [];
    const code = await main(argv, (l) => lines.push(l));
    return { code, text: lines.join("\n") };
  };

  test.each([
    [["check", "--builtin", "--path", "forlop"], '--path "forlop": one of forloop, foreach'],
    [["check", "--builtin", "--dtype", "float8"], '--dtype "float8": one of float64, float32, float16, bfloat16'],
    [["check", "--builtin", "--tag", "nosuchtag"], '--tag "nosuchtag": one of add-param-group,'],
    [["check", "--builtin", "--id", "no-such-case"], "no case matches the filters (--id no-such-case); the corpus has"],
    [["check", "--builtin", "--bogus", "x"], "unknown flag --bogus: check takes --port,"],
    [["list", "--tags", "edge"], "unknown flag --tags: list takes --id,"],
    [["check", "-x"], 'unexpected argument "-x"'],
    [["frobnicate"], 'unknown command "frobnicate"'],
  ])("%j is refused (exit 2), naming what is valid", async (argv, message) => {
    const { code, text } = await run(...argv);
    expect(code).toBe(2);
    expect(text).toContain(message);
  });

  test.each([["check"], ["list"], ["record"], ["validate"], ["convert"]])("%s --help and -h print its usage (exit 0)", async (command) => {
    for (const flag of ["--help", "-h"]) {
      const { code, text } = await run(command, flag);
      expect(code).toBe(0);
      expect(text).toMatch(new RegExp(`^usage: nadam-reference ${command}\\b`));
    }
  });

  test("--version prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(await run("--version")).toEqual({ code: 0, text: `nadam-reference ${version}` });
  });

  test.each(["cjs-port.cjs", "mts-port.mts"])("a port module %s is loaded as a module, not run as a command", async (file) => {
    const port = await portFrom(join(here, "fixtures", file));
    expect(port.name).toBe(`module port from ${file}`);
  });
});

describe("expectations, reports and the command line", () => {
  test("an expectation file turns a known failure into expected-fail, and flags one that passes", async () => {
    // Swapping the weight decay modes shows only where weight_decay != 0.
    const broken = subprocessPort([...JS_PORT, "--mistake", "weight-decay-mode-swapped"]);
    const expectations = new Map([["*", { expected_failures: [{ id: "options/weight-decay*", reason: "decay bug, issue #12" }, { id: "options/defaults/float32/forloop", reason: "stale entry" }] }]]);
    const report = await runSuite([broken], { policy: DEFAULT, expectations, filter: { ids: ["options/weight-decay/float32/forloop", "options/defaults/float32/forloop"], profiles: ["default"] } });
    const byId = Object.fromEntries(report.ports[0]!.results.map((r) => [r.id, r]));
    expect(byId["options/weight-decay/float32/forloop"]!.status).toBe("expected-fail");
    expect(byId["options/weight-decay/float32/forloop"]!.reason).toBe("decay bug, issue #12");
    expect(byId["options/defaults/float32/forloop"]!.status).toBe("unexpected-pass");
    expect(conformant(report)).toBe(false);
  });

  test("JUnit XML and HTML carry the failure, its first divergence, diagnosis and plot", async () => {
    const report = await runSuite([subprocessPort([...JS_PORT, "--mistake", "eps-inside-sqrt"])], { policy: DEFAULT, filter: { ids: ["options/eps-1e-3/float32/forloop", "options/defaults/float32/forloop"], profiles: ["default"] } });
    const xml = junit(report);
    expect(xml).toMatch(/<testsuite name="[^"]+" tests="2" failures="1"/);
    expect(xml).toMatch(/<failure message="step 1: /);
    const page = html(report);
    expect(page).toContain('id="matrix"');
    expect(page).toMatch(/<svg class="plot" data-points="12"/);
    expect(page).toContain("looks like eps-inside-sqrt");
  });

  test("matrix cells and the HTML report show passes, failures, errors, expected failures and skips apart; every failure is in the page", async () => {
    // torch 1.13's formula fails 60 float32/float64 option cases; two are expected, the float16 ones are skipped.
    const spec = specPort({ formula: "torch-1.13", name: "torch 1.13 formula" });
    const failing: Port = { ...spec, name: spec.name, capabilities: async () => ({ ...(await spec.capabilities()), dtypes: ["float32", "float64", "bfloat16"] }) };
    const expectations = new Map([["*", { expected_failures: [{ id: "options/defaults/float32/*", reason: "known: 1.13" }] }]]);
    const report = await runSuite([failing], { policy: EXACT, expectations, filter: { tags: ["options"], profiles: ["default"], dtypes: ["float32", "float64", "float16"] } });
    const c = counts(report.ports[0]!.results);
    expect(c["expected-fail"]).toBe(2);
    expect(c.skip).toBe(40);
    expect(c.fail).toBeGreaterThan(50);
    const row = matrix(report).split("\n").find((l) => l.startsWith("torch 1.13 formula"))!;
    expect(row).toMatch(new RegExp(` ${c.pass}/${c.pass + c.fail + 2} F${c.fail} XF2 S40$`));
    const page = html(report);
    expect(page).toContain(`F${c.fail} XF2 S40</td>`);
    expect(page).toContain("2 expected-fail cases (listed in an expectation file)");
    expect(page).toContain(`${c.fail - 50} more failing cases`);
    expect((page.match(/<div class="case fail"/g) ?? []).length).toBe(c.fail);
  });

  test("a failure in the state alone is plotted for the tensor that failed", async () => {
    // torch 1.13's foreach path differs from torch 2's in exp_avg first (mul + add for lerp).
    const report = await runSuite([specPort({ formula: "torch-1.13" })], { policy: EXACT, filter: { ids: ["options/defaults/float32/foreach"], profiles: ["default"] } });
    const result = report.ports[0]!.results[0]!;
    expect(result.comparison?.first?.kind).toBe("exp_avg");
    const page = html(report);
    const svg = page.match(/<svg class="plot" data-points="12" data-tensor="exp_avg"[^]*?<\/svg>/)?.[0];
    expect(svg).toBeDefined();
    expect(result.comparison!.distanceByStep.exp_avg.some((d) => d > 0)).toBe(true);
  });

  test("nadam-reference check exits 0 when conformant, 1 when not; nadam-reference list lists", async () => {
    const lines: string[] = [];
    expect(await main(["check", "--port", "builtin:typed-array", "--id", "options/defaults/*", "--policy", "exact"], (l) => lines.push(l))).toBe(0);
    expect(lines.at(-1)).toMatch(/^conformant under the exact policy/);
    lines.length = 0;
    expect(await main(["check", "--port", `node ${JS_PORT[1]} --mistake keras-optax-formula`, "--id", "options/defaults/float32/forloop"], (l) => lines.push(l))).toBe(1);
    expect(lines.join("\n")).toMatch(/looks like: keras-optax-formula/);
    lines.length = 0;
    expect(await main(["list", "--tag", "closed-loop", "--profile", "default"], (l) => lines.push(l))).toBe(0);
    expect(lines.at(-1)).toBe("12 cases");
    expect(await main(["check", "--policy", "loose", "--builtin"], () => undefined)).toBe(2);
  });
});
