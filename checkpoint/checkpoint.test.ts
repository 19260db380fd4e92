/**
 * The state dict format against real PyTorch files: torch.save'd fixtures of
 * torch 2.6 and 1.13 read back equal to the JSON PyTorch wrote beside them, pass
 * validation, and survive our write-read; other optimizers' and hostile files
 * are refused, each with its own message.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, test } from "vitest";
import { hostileFixtures } from "./hostile.ts";
import { checkBytes, checkFile, loadStateDictFile, MAX_JSON_CONTAINERS, MAX_JSON_VALUES, saveStateDictFile } from "./files.ts";
import { stateDictToJson, tensorBytes } from "./json.ts";
import { PickleWriter, PyInt } from "./pt/pickle.ts";
import { PyTuple } from "./pt/unpickle.ts";
import { writeZip } from "./pt/zip.ts";
import { readPt, writePt } from "./pt/torch-file.ts";
import { main } from "../cli/main.ts";
import { NAdam, Tensor } from "../impl/index.ts";

const root = new URL("../golden/state-dicts/", import.meta.url).pathname;
const versions = readdirSync(root).filter((d) => !d.endsWith(".json"));
const fixtures = versions.flatMap((v) => readdirSync(join(root, v)).filter((f) => f.endsWith(".pt") && !f.startsWith("other-")).map((f) => [v, f] as const));
const hostileDir = new URL("./fixtures/hostile/", import.meta.url).pathname;
const expected = JSON.parse(readFileSync(join(hostileDir, "expected.json"), "utf8")) as Record<string, { why: string; expect: string }>;

describe("PyTorch's own files", () => {
  test("there are fixtures of torch 2.6 and 1.13", () => {
    expect(versions.some((v) => v.startsWith("2.6"))).toBe(true);
    expect(versions.some((v) => v.startsWith("1.13"))).toBe(true);
    expect(fixtures.length).toBeGreaterThanOrEqual(16);
  });

  test("golden/state-dicts/manifest.json lists every file (DCP folders included) with its sha256, made by the generators as they are", () => {
    const manifest = JSON.parse(readFileSync(join(root, "manifest.json"), "utf8")) as { generators: { path: string; sha256: string }[]; files: Record<string, string> };
    const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
    const onDisk = walk(root).map((p) => relative(root, p)).filter((p) => p !== "manifest.json").sort();
    expect(Object.keys(manifest.files).sort()).toEqual(onDisk);
    expect(onDisk.filter((f) => sha256(join(root, f)) !== manifest.files[f])).toEqual([]);
    expect(onDisk.some((f) => f.endsWith(".distcp"))).toBe(true);
    const repo = new URL("../", import.meta.url).pathname;
    for (const g of manifest.generators) expect(sha256(join(repo, g.path)), g.path).toBe(g.sha256);
  });

  test.each(fixtures)("torch %s %s: read equals the JSON torch wrote, validates, and survives write-read", (version, file) => {
    const bytes = readFileSync(join(root, version, file));
    const json = JSON.parse(JSON.stringify(stateDictToJson(readPt(bytes))));
    expect(json).toEqual(JSON.parse(readFileSync(join(root, version, file.replace(/\.pt$/, ".json")), "utf8")));
    expect(checkFile(join(root, version, file)).problems).toEqual([]);
    expect(checkFile(join(root, version, file.replace(/\.pt$/, ".json"))).problems).toEqual([]);
    expect(JSON.parse(JSON.stringify(stateDictToJson(readPt(writePt(readPt(bytes))))))).toEqual(json);
  });

  test.each(versions)("torch %s: Adam's and SGD's state dicts are named as such", (version) => {
    expect(checkFile(join(root, version, "other-adam.pt")).problems[0]!.message).toMatch(/not a NAdam state_dict: it looks like torch.optim.Adam's/);
    expect(checkFile(join(root, version, "other-sgd.pt")).problems[0]!.message).toMatch(/not a NAdam state_dict: it looks like torch.optim.SGD's/);
  });

  test.each(versions)("torch %s: the committed round-trip report (torch loads our files and continues the run) has no problem", (version) => {
    const report = JSON.parse(readFileSync(join(root, version, "roundtrip.json"), "utf8")) as { weights_only: boolean; fixtures: Record<string, { problems: string[] }> };
    const names = fixtures.filter(([v]) => v === version).map(([, f]) => f.replace(/\.pt$/, ""));
    expect(Object.keys(report.fixtures).sort()).toEqual(names.sort());
    expect(Object.values(report.fixtures).flatMap((f) => f.problems)).toEqual([]);
    expect(report.weights_only).toBe(version.startsWith("2."));
  });

  test("a fixture loads into an NAdam over matching params and steps", () => {
    const sd = loadStateDictFile(join(root, versions.find((v) => v.startsWith("2.6"))!, "named-params.pt"));
    const [w, b] = [Tensor.zeros([3, 2]), Tensor.zeros([2])];
    const optimizer = new NAdam([["encoder.weight", w], ["encoder.bias", b]]);
    optimizer.loadStateDict(sd);
    w.grad = Tensor.zeros([3, 2]);
    b.grad = Tensor.zeros([2]);
    optimizer.step();
    expect((optimizer.state.get(w)!.step as Tensor).item()).toBe(3);
    expect(optimizer.paramGroups[0]!.momentum_decay).toBe(6e-3);
  });
});

describe("hostile and broken files", () => {
  test("the committed fixtures are what checkpoint/hostile.ts builds", () => {
    const built = hostileFixtures();
    expect(Object.keys(expected).sort()).toEqual(built.map((f) => f.file).sort());
    for (const f of built) expect(readFileSync(join(hostileDir, f.file)).equals(f.bytes)).toBe(true);
  });

  test.each(Object.entries(expected))("%s (%s) is refused with its own message", (file, { expect: message }) => {
    const t0 = performance.now();
    const checked = checkFile(join(hostileDir, file));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(checked.skeleton).toBeUndefined();
    expect(checked.problems.map((p) => `${p.path}: ${p.message}`).join("\n")).toContain(message);
  });

  // Expansion and work are budgeted by what the file can describe: each is refused in a child process, within its memory.
  test.each(["memo-laughs.pt", "append-flood.pt", "memo-shared-tensor.pt", "storage-rebuilt-41-times.pt", "overlapping-entries.pt"])("%s is refused within 400 MB of peak memory", (file) => {
    const script = `import { checkFile } from ${JSON.stringify(new URL("./files.ts", import.meta.url).pathname)};
      const checked = checkFile(${JSON.stringify(join(hostileDir, file))});
      console.log(JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS, message: checked.problems[0]?.message }));`;
    const child = spawnSync(process.execPath, ["--max-old-space-size=300", "--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
    expect(child.status, child.stderr).toBe(0);
    const { maxRssKb, message } = JSON.parse(child.stdout) as { maxRssKb: number; message: string };
    expect(message).toContain(expected[file]!.expect);
    expect(maxRssKb * 1024).toBeLessThan(400e6);
  });

  test("each hostile file gets a different first message", () => {
    const firsts = Object.keys(expected).map((file) => checkFile(join(hostileDir, file)).problems[0]!.message);
    expect(new Set(firsts).size).toBe(firsts.length);
  });
});

describe("the nadam CLI", () => {
  test("validate: exit 0 when all files are valid, 1 otherwise, every problem printed", async () => {
    const lines: string[] = [];
    const good = fixtures.map(([v, f]) => join(root, v, f));
    expect(await main(["validate", ...good], (l) => lines.push(l))).toBe(0);
    expect(lines.at(-1)).toBe(`${good.length} valid, 0 invalid`);
    lines.length = 0;
    expect(await main(["validate", good[0]!, join(hostileDir, "nan-lr.json")], (l) => lines.push(l))).toBe(1);
    expect(lines).toContain(`${join(hostileDir, "nan-lr.json")}: INVALID`);
    expect(lines).toContain("  /param_groups/0/lr: is NaN; expected a number >= 0");
  });

  test("convert: .pt -> .json -> .pt keeps every byte of state; an invalid input is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nadam-convert-"));
    const source = join(root, versions.find((v) => v.startsWith("2.6"))!, "half-precision.pt");
    expect(await main(["convert", source, join(dir, "a.json")], () => undefined)).toBe(0);
    expect(await main(["convert", join(dir, "a.json"), join(dir, "b.pt")], () => undefined)).toBe(0);
    expect(stateDictToJson(readPt(readFileSync(join(dir, "b.pt"))))).toEqual(stateDictToJson(readPt(readFileSync(source))));
    const lines: string[] = [];
    expect(await main(["convert", join(hostileDir, "evil-global.pt"), join(dir, "c.json")], (l) => lines.push(l))).toBe(1);
    expect(lines.join("\n")).toMatch(/the global os.system is not allowed/);
    saveStateDictFile(join(dir, "d.pt"), loadStateDictFile(join(dir, "a.json")));
    expect(checkFile(join(dir, "d.pt")).problems).toEqual([]);
  });

  test("nadam-reference validate runs as a command with the right exit status (from source; test/package runs the installed one)", () => {
    const bin = ["--import", "tsx", new URL("../cli/bin.ts", import.meta.url).pathname];
    const ok = spawnSync(process.execPath, [...bin, "validate", join(root, fixtures[0]![0], fixtures[0]![1])], { encoding: "utf8" });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/valid NAdam state_dict/);
    const bad = spawnSync(process.execPath, [...bin, "validate", join(hostileDir, "evil-opcode.pt")], { encoding: "utf8" });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/pickle opcode 0x62 \(BUILD\) is not allowed/);
  });
});

describe("paths that are not plain files, and writes that fail", () => {
  const bin = ["--import", "tsx", new URL("../cli/bin.ts", import.meta.url).pathname];
  const good = () => join(root, versions.find((v) => v.startsWith("2.6"))!, "defaults-float32-forloop.pt");

  test("validate refuses a symlink to /dev/zero, a FIFO and a folder by what they are, at once", () => {
    const dir = mkdtempSync(join(tmpdir(), "nadam-special-"));
    symlinkSync("/dev/zero", join(dir, "zero.json"));
    expect(spawnSync("mkfifo", [join(dir, "fifo.json")]).status).toBe(0);
    const t0 = performance.now();
    const run = spawnSync(process.execPath, [...bin, "validate", join(dir, "zero.json"), join(dir, "fifo.json"), dir], { encoding: "utf8", timeout: 20_000 });
    expect(performance.now() - t0).toBeLessThan(15_000);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain("  /: a character device, not a regular file");
    expect(run.stdout).toContain("  /: a FIFO (named pipe), not a regular file");
    expect(run.stdout).toContain("a folder without a .metadata file, so not a torch.distributed.checkpoint folder");
  });

  test.each([
    ["objects", `{"state": {}, "param_groups": [{"params": [], "x": [${"{},".repeat(MAX_JSON_CONTAINERS)}{}]}]}`, `JSON holds more than ${MAX_JSON_CONTAINERS} objects and arrays`],
    ["values", `{"state": {}, "param_groups": [{"params": [], "x": [${"0,".repeat(MAX_JSON_VALUES)}0]}]}`, `JSON holds more than ${MAX_JSON_VALUES} values`],
  ])("a JSON file of more %s than a state dict holds is refused before it is parsed (parsing costs tens of bytes per byte)", (_what, text, message) => {
    const t0 = performance.now();
    expect(checkBytes("many.json", Buffer.from(text)).problems).toEqual([{ path: "", message: expect.stringContaining(message) as string }]);
    expect(performance.now() - t0).toBeLessThan(15_000);
  });

  test("validate | head -1: a reader that goes away ends the command quietly", () => {
    const files = Array<string>(200).fill(good());
    const run = spawnSync("bash", ["-c", `${JSON.stringify(process.execPath)} ${bin.map((a) => JSON.stringify(a)).join(" ")} validate ${files.map((f) => JSON.stringify(f)).join(" ")} | head -1; echo "status \${PIPESTATUS[0]}"`], { encoding: "utf8", timeout: 30_000 });
    expect(run.stderr).not.toMatch(/EPIPE|Error/);
    expect(run.stdout).toMatch(/^.*valid NAdam state_dict.*\nstatus 0\n$/);
  });

  test("convert writes through a new file: a write that fails midway (a file size limit) leaves the previous file whole", () => {
    const dir = mkdtempSync(join(tmpdir(), "nadam-convert-"));
    const target = join(dir, "out.pt");
    writeFileSync(target, "previous good file\n");
    // 1 KiB: less than the .pt; bash ignores SIGXFSZ so that the write fails with EFBIG instead of killing node.
    const run = spawnSync("bash", ["-c", `trap '' XFSZ; ulimit -f 1; exec ${JSON.stringify(process.execPath)} ${bin.map((a) => JSON.stringify(a)).join(" ")} convert ${JSON.stringify(join(root, versions.find((v) => v.startsWith("2.6"))!, "half-precision.pt"))} ${JSON.stringify(target)}`], { encoding: "utf8", timeout: 30_000 });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^cannot write .*out\.pt: .*; the file there is unchanged$/m);
    expect(readFileSync(target, "utf8")).toBe("previous good file\n");
    expect(readdirSync(dir)).toEqual(["out.pt"]); // no temporary file left
  });

  test.each([
    ["its own input", (dir: string, input: string) => input, "are the same file"],
    ["a symlink", (dir: string) => (symlinkSync(join(dir, "elsewhere.json"), join(dir, "link.json")), join(dir, "link.json")), "it is a symbolic link, which is not written through"],
    ["a folder", (dir: string) => dir, "is a directory"],
    ["in a missing folder", (dir: string) => join(dir, "no/such/out.json"), "the folder"],
  ])("convert refuses to write %s, with a message and exit 1", async (_what, target, message) => {
    const dir = mkdtempSync(join(tmpdir(), "nadam-convert-"));
    const input = join(dir, "in.json");
    expect(await main(["convert", good(), input], () => undefined)).toBe(0);
    const before = readFileSync(input);
    const lines: string[] = [];
    expect(await main(["convert", input, target(dir, input)], (l) => lines.push(l))).toBe(1);
    expect(lines.join("\n")).toContain(message);
    expect(readFileSync(input).equals(before)).toBe(true);
    expect(existsSync(join(dir, "elsewhere.json"))).toBe(false);
  });

  test("'__proto__' as a param group key is refused by the API and by loadStateDict; Object.prototype stays clean", () => {
    const w = Tensor.zeros([2]);
    const optimizer = new NAdam([w]);
    expect(() => optimizer.addParamGroup({ params: [Tensor.zeros([2])], ...(JSON.parse('{"__proto__": {"lr": 10}}') as object) })).toThrow("'__proto__' cannot be a param group key");
    const sd = optimizer.stateDict();
    const hostile = { ...sd, param_groups: [JSON.parse(`{"__proto__": {"lr": 10}, ${JSON.stringify(sd.param_groups[0]).slice(1)}`) as (typeof sd.param_groups)[number]] };
    expect(() => optimizer.loadStateDict(hostile)).toThrow("'__proto__' key in param_groups[0]");
    expect(({} as Record<string, unknown>).lr).toBeUndefined();
  });
});

describe("what a conversion cannot keep is said", () => {
  test("convert names each -0.0, Python int, tuple and int key it cannot keep", async () => {
    const sd = readPt(readFileSync(join(root, versions.find((v) => v.startsWith("2.6"))!, "defaults-float32-forloop.pt")));
    const toPython = (g: Record<string, unknown>) => new Map(Object.entries(g).map(([k, v]) => [k, k === "params" ? (v as number[]).map((id) => new PyInt(id)) : k === "betas" ? new PyTuple(v as number[]) : v]));
    const group = toPython({ ...sd.param_groups[0]!, lr: -0 });
    group.set("milestones", new PyTuple([new PyInt(3), new PyInt(5)]));
    group.set("by_epoch", new Map([[new PyInt(3), "x"]]));
    const state = new Map(Object.entries(sd.state).map(([id, entry]) => [new PyInt(Number(id)), new Map(Object.entries(entry))]));
    const { pickle, storages } = PickleWriter.dump(new Map<string, unknown>([["state", state], ["param_groups", [group]]]));
    const dir = mkdtempSync(join(tmpdir(), "nadam-losses-"));
    writeFileSync(join(dir, "in.pt"), writeZip([["archive/data.pkl", pickle], ["archive/byteorder", Buffer.from("little")], ...storages.map((t, i) => [`archive/data/${i}`, tensorBytes(t as Tensor)] as const), ["archive/version", Buffer.from("3\n")]]));
    const lines: string[] = [];
    expect(await main(["convert", join(dir, "in.pt"), join(dir, "out.json")], (l) => lines.push(l))).toBe(0);
    const notes = lines.filter((l) => l.startsWith("  note: "));
    expect(notes).toEqual(
      expect.arrayContaining([
        "  note: /param_groups/0/lr: the float -0.0 is written to JSON as 0",
        "  note: /param_groups/0/milestones: a tuple is written back as a list",
        "  note: /param_groups/0/milestones/0: the int 3 is written back to .pt as the float 3.0",
        "  note: /param_groups/0/by_epoch: the int key 3 becomes the string '3'",
      ]),
    );
    expect(notes.some((l) => l.includes("/params/"))).toBe(false);
    // torch's own default weight_decay is the int 0
    lines.length = 0;
    expect(await main(["convert", join(root, versions.find((v) => v.startsWith("2.6"))!, "defaults-float32-forloop.pt"), join(dir, "torch.json")], (l) => lines.push(l))).toBe(0);
    expect(lines).toContain("  note: /param_groups/0/weight_decay: the int 0 is written back to .pt as the float 0.0");
  });
});
