/**
 * Ports that misbehave (conformance/fixtures/hostile-port.mjs, one mode each)
 * and what they must not do to the suite: crash it, hang it, outlive it, leave
 * processes behind, or pass by choosing their own name or declaring nothing.
 */
import { spawn, spawnSync } from "node:child_process";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { main } from "../cli/main.ts";
import { globMatches, selectCases } from "./cases.ts";
import { EXACT } from "./policy.ts";
import { randomCases } from "./random.ts";
import { decodeTensor, encodeTensor } from "./wire.ts";
import type { JsonTensor } from "../checkpoint/json.ts";
import type { Port } from "./port.ts";
import { matrix } from "./report/console.ts";
import { junit } from "./report/junit.ts";
import { specPort } from "./spec-port.ts";
import { alive, subprocessPort } from "./subprocess.ts";
import { conformant, runSuite } from "./suite.ts";

const here = new URL(".", import.meta.url).pathname;
const HOSTILE = join(here, "fixtures/hostile-port.mjs");
const hostile = (mode: string, arg = "") => ["node", HOSTILE, mode, arg];
const JS_PORT = ["node", join(here, "examples/js-port/nadam-port.mjs")];
const ONE = { ids: ["options/defaults/float32/forloop"], profiles: ["default" as const] };
const TEN = selectCases({ tags: ["options"], dtypes: ["float32"], paths: ["forloop"], profiles: ["default"] }).slice(0, 10);
const tmp = () => mkdtempSync(join(tmpdir(), "nadam-hostile-"));

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

describe("a port cannot crash the suite", () => {
  test("check --builtin --port true: the port's closed pipe is its error, the built-in results are all reported", async () => {
    const lines: string[] = [];
    const code = await main(["check", "--builtin", "--port", "true", "--id", ONE.ids[0]!, "--profile", "default", "--random", "0"], (l) => lines.push(l));
    const text = lines.join("\n");
    expect(code).toBe(1);
    expect(text).toMatch(/^spec \(the oracle\)\s+1\/1\s+1\/1$/m);
    expect(text).toMatch(/^true\s+could not run: the port exited \(code 0\) before answering/m);
    expect(text).toContain("NOT conformant");
  });

  test("a line longer than the bound declares the port dead, without holding the line", async () => {
    const { value: report, seconds } = await timed(() => runSuite([subprocessPort(hostile("long-line", "64"), { maxLineBytes: 2 ** 20 })], { policy: EXACT, filter: ONE }));
    expect(report.ports[0]!.error).toBe(`wrote a line longer than ${2 ** 20} bytes`);
    expect(seconds).toBeLessThan(10);
  });

  test("the suite stays within its memory when a port writes one 256 MiB line (a child with a 300 MB heap)", () => {
    const script = `
      import { runSuite } from ${JSON.stringify(join(here, "suite.ts"))};
      import { subprocessPort } from ${JSON.stringify(join(here, "subprocess.ts"))};
      import { EXACT } from ${JSON.stringify(join(here, "policy.ts"))};
      const report = await runSuite([subprocessPort(${JSON.stringify(hostile("long-line", "256"))})], { policy: EXACT, filter: ${JSON.stringify(ONE)} });
      console.log(report.ports[0].error);`;
    return new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ["--max-old-space-size=300", "--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      child.on("exit", (code) => {
        try {
          expect(out).toContain("wrote a line longer than 67108864 bytes");
          expect(code).toBe(0);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }, 60_000);
});

describe("a port cannot hang the suite", () => {
  test.each([
    ["silent", "did not answer 'hello' within 1 s"],
    ["garbage", "did not answer 'hello' within 1 s"],
    ["null", "answered null, not a JSON object"],
    ["wrong-id", "answered with id 1001, which no waiting request has"],
    ["string-id", 'answered with id "1", which no waiting request has'],
    ["wrong-protocol", 'the port speaks "nadam-port/9"'],
    ["null-capabilities", "capabilities null; expected"],
  ])("a port that is %s: its error is reported, it is ended, and the run returns", async (mode, message) => {
    // A hello that never comes is waited on 1 s; a wrong one is refused as soon as it comes (the generous bound is for a loaded machine).
    const hangs = message.startsWith("did not answer");
    const port = subprocessPort(hostile(mode), { startSeconds: hangs ? 1 : 20, graceSeconds: 0.5 });
    const { value: report, seconds } = await timed(() => runSuite([port], { policy: EXACT, filter: ONE }));
    expect(report.ports[0]!.error).toContain(message);
    expect(conformant(report)).toBe(false);
    expect(seconds).toBeLessThan(hangs ? 8 : 20);
  });

  test("a port that never answers a step is declared dead once: ten cases do not wait ten times", async () => {
    const port = subprocessPort(hostile("hang-step"), { timeoutSeconds: 1, startSeconds: 20, graceSeconds: 0.5 });
    const { value: report, seconds } = await timed(() => runSuite([port], { policy: EXACT, cases: TEN }));
    const p = report.ports[0]!;
    expect(p.results.map((r) => r.status)).toEqual(["error"]);
    expect(p.error).toBe(`declared dead at case ${TEN[0]!.id} [default]: it did not answer 'step' within 1 s; 9 cases not run`);
    expect(seconds).toBeLessThan(8); // ten waits would be 10 s
  });

  test("an in-process port that never answers is held to the per-case budget; the run to its own", async () => {
    const never: Port = { name: "never", capabilities: () => specPort().capabilities(), open: () => new Promise(() => undefined) };
    const { value: report, seconds } = await timed(() => runSuite([never], { policy: EXACT, cases: TEN, caseSeconds: 0.5 }));
    expect(report.ports[0]!.error).toBe(`declared dead at case ${TEN[0]!.id} [default]: it took more than 0.5 s (the per-case budget); 9 cases not run`);
    expect(seconds).toBeLessThan(4); // ten waits would be 5 s
    const slow: Port = { name: "slow", capabilities: () => specPort().capabilities(), open: async (r) => (await new Promise((s) => setTimeout(s, 150)), specPort().open(r)) };
    const budget = await runSuite([slow, specPort()], { policy: EXACT, cases: TEN, runSeconds: 0.5 });
    expect(budget.ports[0]!.results.length).toBeLessThan(10);
    expect(budget.ports[0]!.error).toMatch(/the run's budget of 0.5 s was spent.*; \d+ cases not run$/);
    expect(budget.ports[1]!.error).toMatch(/^the run's budget of 0.5 s was spent before case/);
    expect(conformant(budget)).toBe(false);
  });

  test("an in-process port whose dispose() never returns is left behind after its budget, and the report says so", async () => {
    const stuck: Port = { ...specPort(), name: "stuck", dispose: () => new Promise(() => undefined) };
    const { value: report, seconds } = await timed(() => runSuite([stuck, specPort()], { policy: EXACT, filter: ONE, disposeSeconds: 0.3 }));
    expect(report.ports[0]!.shutdown).toBe("its dispose() did not return within 0.3 s; left behind");
    expect(report.ports[1]!.results[0]!.status).toBe("pass");
    expect(seconds).toBeLessThan(3);
  });

  test("a replacement process after a crash is greeted again", async () => {
    const marker = join(tmp(), "crashed");
    const report = await runSuite([subprocessPort(hostile("crash-once", marker))], { policy: EXACT, cases: TEN.slice(0, 2) });
    const [first, second] = report.ports[0]!.results;
    expect(first!.status).toBe("error");
    expect(first!.reason).toMatch(/^the port exited \(code 3\) before answering/);
    expect(second).toMatchObject({ status: "skip", reason: "the replacement process was greeted" });
  });
});

describe("a port cannot outlive the suite", () => {
  test("one that ignores SIGTERM and stays alive after its stdin closes is killed, and the report says so", async () => {
    const port = subprocessPort(hostile("immortal"), { graceSeconds: 0.5 });
    const { value: report, seconds } = await timed(() => runSuite([port], { policy: EXACT, filter: ONE }));
    expect(report.ports[0]!.shutdown).toMatch(/^the port did not exit within 0.5 s of bye and its stdin closing; the port ignored SIGTERM; 1 process \(pid \d+\) killed with SIGKILL$/);
    expect(matrix(report)).toContain("ending it: the port did not exit");
    expect(seconds).toBeLessThan(15);
  });

  test("the processes it started, even in a session of their own (setsid), end with it", async () => {
    const pidFile = join(tmp(), "pid");
    const report = await runSuite([subprocessPort(hostile("children", pidFile), { graceSeconds: 0.5 })], { policy: EXACT, filter: ONE });
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    expect(grandchild).toBeGreaterThan(0);
    await new Promise((s) => setTimeout(s, 200));
    expect(alive(grandchild)).toBe(false);
    expect(report.ports[0]!.shutdown).toBe(`it left 1 process running after it exited (pid ${grandchild}), ended with it`);
  });

  test("the command exits when a port failed to start, instead of staying alive (exit 1, within seconds)", async () => {
    const bin = join(here, "../cli/bin.ts");
    const t0 = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", bin, "check", "--port", `node ${HOSTILE} null-capabilities`, "--id", ONE.ids[0]!], { stdio: "ignore" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.on("exit", (c) => (clearTimeout(timer), resolve(c)));
    });
    expect(code).toBe(1);
    expect((performance.now() - t0) / 1000).toBeLessThan(25);
  });
});

describe("a port cannot pass by what it declares or what it calls itself", () => {
  test("a port that supports nothing is not conformant, even beside ports that are", async () => {
    const report = await runSuite([specPort(), subprocessPort(hostile("empty-capabilities"))], { policy: EXACT, filter: ONE });
    expect(report.ports[1]!.results.every((r) => r.status === "skip")).toBe(true);
    expect(conformant(report)).toBe(false);
  });

  test("waivers follow the port the user named, not the name a port gives itself", async () => {
    const broken = Object.assign(subprocessPort([...JS_PORT, "--mistake", "eps-inside-sqrt"]), { spec: "my-port" });
    const waiveAll = new Map([["builtin:spec", { port: "builtin:spec", expected_failures: [{ id: "*", reason: "waived" }] }]]);
    // It calls itself builtin:spec; its failures stay failures.
    const impostor = Object.assign(subprocessPort(hostile("named", "builtin:spec")), { spec: "impostor" });
    const filter = { ids: ["options/eps-1e-3/float32/forloop"], profiles: ["default" as const] };
    const report = await runSuite([broken, impostor], { policy: EXACT, filter, expectations: waiveAll });
    expect(report.ports[0]!.results[0]!.status).toBe("fail");
    expect(report.ports[1]!.name).toBe("builtin:spec");
    expect(matrix(report)).toContain("builtin:spec (impostor)");
    const lines: string[] = [];
    const dir = tmp();
    writeFileSync(join(dir, "x.json"), JSON.stringify({ port: "builtin:spec", expected_failures: [{ id: "*", reason: "r" }] }));
    expect(await main(["check", "--port", `node ${HOSTILE} named builtin:spec`, "--expectations", join(dir, "x.json"), "--id", ONE.ids[0]!], (l) => lines.push(l))).toBe(2);
    expect(lines.join("\n")).toContain('waives failures of the port "builtin:spec", which is not one this run names');
  });

  test("a name with terminal escapes and control characters reaches neither the terminal nor the XML raw", async () => {
    const name = "evil\u001b[2J\u001b]0;pwned\u0007\u0000\u0001name";
    const report = await runSuite([subprocessPort(hostile("named", JSON.stringify(name)))], { policy: EXACT, filter: ONE });
    expect(report.ports[0]!.name).toBe("evil\\u001b[2J\\u001b]0;pwned\\u0007\\u0000\\u0001name");
    const text = matrix(report) + junit(report);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/);
  });
});

describe("what the user points the suite at cannot hang it or leak through it", () => {
  test("globs match as before, in linear time (a run of stars took minutes as a regular expression)", () => {
    const table: [string, string, boolean][] = [
      ["options/*", "options/defaults/float32/forloop", true],
      ["*/float32/*", "options/defaults/float32/forloop", true],
      ["*forloop", "options/defaults/float32/forloop", true],
      ["options/*/float64/*", "options/defaults/float32/forloop", false],
      ["a*b*c", "aXbYc", true],
      ["a*b*c", "aXbY", false],
      ["*", "", true],
      ["", "", true],
      ["a.b", "aXb", false],
    ];
    for (const [pattern, id, matches] of table) expect(globMatches(pattern, id), `${pattern} ~ ${id}`).toBe(matches);
    const t0 = performance.now();
    for (const c of selectCases()) expect(globMatches(`${"*".repeat(40)}Q`, c.id + "a".repeat(40))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(5000); // as a regular expression: minutes
  });

  test("check --offline reads no link, device or FIFO: a case file linked to a secret is not quoted anywhere", async () => {
    const dir = tmp();
    const secret = join(tmp(), "secret.txt");
    writeFileSync(secret, "hunter2 is the password\n");
    writeFileSync(join(dir, "port.json"), JSON.stringify({ name: "offline", capabilities: { dtypes: ["float32"], paths: ["forloop"], profiles: ["default"], features: [] } }));
    symlinkSync(secret, join(dir, "options__defaults__float32__forloop.default.json"));
    expect(spawnSync("mkfifo", [join(dir, "options__betas-0.5-0.99__float32__forloop.default.json")]).status).toBe(0);
    const reports = tmp();
    const lines: string[] = [];
    const t0 = performance.now();
    const code = await main(["check", "--offline", dir, "--id", "options/defaults/float32/forloop", "--id", "options/betas-0.5-0.99/float32/forloop", "--profile", "default", "--report", reports], (l) => lines.push(l));
    expect(performance.now() - t0).toBeLessThan(15_000); // a FIFO read blocks for ever
    expect(code).toBe(1);
    const everything = [lines.join("\n"), ...readdirSync(reports).map((f) => readFileSync(join(reports, f), "utf8"))].join("\n");
    expect(everything).toContain("a symbolic link, which is not followed here");
    expect(everything).toContain("a FIFO (named pipe), not a regular file");
    expect(everything).not.toContain("hunter2");
  });

  test("check --offline with port.json linked to /dev/zero, or a FIFO, is refused at once", async () => {
    for (const make of [(f: string) => symlinkSync("/dev/zero", f), (f: string) => expect(spawnSync("mkfifo", [f]).status).toBe(0)]) {
      const dir = tmp();
      make(join(dir, "port.json"));
      const lines: string[] = [];
      const t0 = performance.now();
      expect(await main(["check", "--offline", dir, "--id", "options/defaults/float32/forloop"], (l) => lines.push(l))).toBe(2);
      expect(performance.now() - t0).toBeLessThan(15_000);
      expect(lines.join("\n")).toMatch(/port\.json: (a symbolic link, which is not followed here|a FIFO \(named pipe\), not a regular file)/);
    }
  });
});

describe("a port cannot pass by looking answers up", () => {
  test("random cases: a fresh seed each run, printed; the same seed makes the same cases, judged by the oracle on the fly", async () => {
    const [a, b, c] = [randomCases(7, 6), randomCases(7, 6), randomCases(8, 6)];
    expect(a.map((x) => [x.id, x.source.kind === "closed-loop" ? x.source.objective.options : null])).toEqual(b.map((x) => [x.id, x.source.kind === "closed-loop" ? x.source.objective.options : null]));
    expect(JSON.stringify(a.map((x) => (x.source.kind === "closed-loop" ? x.source.objective.params : null)))).not.toBe(JSON.stringify(c.map((x) => (x.source.kind === "closed-loop" ? x.source.objective.params : null))));
    const corpus = new Set(selectCases().map((x) => x.id));
    expect(a.some((x) => corpus.has(x.id))).toBe(false);
    const seeds = new Set<string>();
    for (let run = 0; run < 2; run++) {
      const lines: string[] = [];
      expect(await main(["check", "--port", "builtin:spec", "--id", ONE.ids[0]!, "--random", "3", "--policy", "exact"], (l) => lines.push(l))).toBe(0);
      const seed = /^random cases: 3 from seed (\d+) \(to repeat them: --seed \1\)$/m.exec(lines.join("\n"))?.[1];
      expect(seed).toBeDefined();
      seeds.add(seed!);
      expect(lines.join("\n")).toMatch(/^spec \(the oracle\)\s+2\/2\s+3\/3\s+5\/5$/m);
    }
    expect(seeds.size).toBe(2);
  });

  test("a port that answers every corpus case from the shipped files, and computes nothing, fails the random cases", async () => {
    const oracle = specPort();
    const corpus = new Set(selectCases().map((x) => x.id));
    // Stands in for a lookup in golden/data: perfect on what ships, nothing on anything else.
    const lookup: Port = {
      name: "lookup",
      capabilities: () => oracle.capabilities(),
      async open(request) {
        if (request.case && corpus.has(request.case.id)) return oracle.open(request);
        throw new Error(`${request.case?.id} is in no file`);
      },
    };
    const cases = [...selectCases(ONE), ...randomCases(1234, 4)];
    const report = await runSuite([lookup], { policy: EXACT, cases });
    expect(report.ports[0]!.results.filter((r) => r.status === "pass").map((r) => r.id)).toEqual([ONE.ids[0]]);
    expect(report.ports[0]!.results.filter((r) => r.status === "error")).toHaveLength(4);
    expect(conformant(report)).toBe(false);
  });
});

describe("what the suite writes cannot be redirected", () => {
  test("--report and record replace a link planted in their folder instead of writing through it", async () => {
    const victim = join(tmp(), "victim.txt");
    writeFileSync(victim, "untouched\n");
    const reports = tmp();
    symlinkSync(victim, join(reports, "report.json"));
    const recorded = tmp();
    symlinkSync(victim, join(recorded, "options__defaults__float32__forloop.default.json"));
    symlinkSync(victim, join(recorded, "port.json"));
    expect(await main(["check", "--port", "builtin:spec", "--id", ONE.ids[0]!, "--profile", "default", "--random", "0", "--report", reports], () => undefined)).toBe(0);
    expect(await main(["record", "--port", "builtin:spec", "--id", ONE.ids[0]!, "--profile", "default", "--out", recorded], () => undefined)).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("untouched\n");
    for (const f of [join(reports, "report.json"), join(recorded, "port.json"), join(recorded, "options__defaults__float32__forloop.default.json")]) expect(lstatSync(f).isFile(), f).toBe(true);
  });
});

describe("a port cannot pass with the right values in the wrong tensors", () => {
  test.each([
    ["float64 params for float32 ones", (t: JsonTensor) => encodeTensor("float64", t.shape, decodeTensor(t)), "param 0 is a float64 tensor of shape [2, 3]; the param is float32 [2, 3]"],
    ["a flat param for a matrix", (t: JsonTensor) => ({ ...t, shape: [t.shape.reduce((a, b) => a * b, 1)] }), "param 0 is a float32 tensor of shape [6]; the param is float32 [2, 3]"],
    ["more values than the shape has (the extra ones would go unjudged)", (t: JsonTensor) => ({ ...t, data: Buffer.concat([Buffer.from(t.data, "base64"), Buffer.alloc(8)]).toString("base64") }), "param 0 holds 8 values; shape [2, 3] of float32 has 6"],
  ])("%s: an error naming both", async (_what, change, message) => {
    const oracle = specPort();
    const bent: Port = {
      name: "bent",
      capabilities: () => oracle.capabilities(),
      async open(request) {
        const session = await oracle.open(request);
        return { ...session, step: async (grads) => { const reply = await session.step(grads); return { ...reply, params: reply.params.map((p, i) => (i === 0 ? change(p) : p)) }; } };
      },
    };
    const report = await runSuite([bent], { policy: EXACT, filter: ONE });
    expect(report.ports[0]!.results[0]).toMatchObject({ status: "error", reason: message });
  });
});

test("an expectation file that is a FIFO, a device, or not JSON is refused at once, unquoted", async () => {
  const dir = tmp();
  expect(spawnSync("mkfifo", [join(dir, "fifo.json")]).status).toBe(0);
  symlinkSync("/dev/zero", join(dir, "zero.json"));
  writeFileSync(join(dir, "text.json"), "hunter2 is the password");
  for (const [file, message] of [["fifo.json", "a FIFO (named pipe), not a regular file"], ["zero.json", "a character device, not a regular file"], ["text.json", "not valid JSON"]] as const) {
    const lines: string[] = [];
    const t0 = performance.now();
    expect(await main(["check", "--port", "builtin:spec", "--expectations", join(dir, file), "--id", ONE.ids[0]!], (l) => lines.push(l))).toBe(2);
    expect(performance.now() - t0).toBeLessThan(15_000);
    expect(lines.join("\n")).toContain(`${join(dir, file)}: ${message}`);
    expect(lines.join("\n")).not.toContain("hunter2");
  }
});
