/**
 * The torch port (examples/torch-port/nadam_port.py, real torch.optim.NAdam over
 * nadam-port/2) judged `exact` on a few cases: every dtype and both paths with
 * default options, and a state_dict reload, under both CPU profiles. It needs
 * torch >= 2.6: the python named by NADAM_TORCH_PYTHON, or (as root) the Debian 13
 * root that scripts/golden.mjs makes. Without one the test is skipped, saying so.
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { EXACT } from "../policy.ts";
import { subprocessPort } from "../subprocess.ts";
import { conformant, runSuite } from "../suite.ts";

const PORT = join(new URL(".", import.meta.url).pathname, "torch-port/nadam_port.py");
const ROOT = process.env.NADAM_GOLDEN_ROOT ?? "/var/cache/nadam-golden/trixie";
const CASES = ["options/defaults/*", "structure/state-dict-reload/*"];

/** The command that runs the port under torch >= 2.6 (without the environment prefix), or why there is none. */
function torchCommand(): { command: string[]; cleanup?: () => void } | { reason: string } {
  const python = process.env.NADAM_TORCH_PYTHON;
  if (python) return { command: [python, PORT] };
  if (!existsSync(join(ROOT, "usr/bin/python3"))) return { reason: `no torch: set NADAM_TORCH_PYTHON to a python with torch >= 2.6, or make ${ROOT} with npm run golden` };
  if (process.getuid?.() !== 0) return { reason: `no torch: ${ROOT} needs root (chroot); or set NADAM_TORCH_PYTHON` };
  const work = mkdtempSync(join(ROOT, "tmp", "nadam-torch-port-"));
  cpSync(PORT, join(work, "nadam_port.py"));
  return { command: ["chroot", ROOT, "python3", `/${relative(ROOT, work)}/nadam_port.py`], cleanup: () => rmSync(work, { recursive: true, force: true }) };
}

const torch = torchCommand();
afterAll(() => ("cleanup" in torch ? torch.cleanup?.() : undefined));

describe("the torch port", () => {
  const skipped = "reason" in torch;
  for (const capability of ["default", "avx2"]) {
    test.skipIf(skipped)(`real torch.optim.NAdam (ATEN_CPU_CAPABILITY=${capability}) passes exact: every dtype and path, and a state_dict reload${skipped ? ` (skipped: ${torch.reason})` : ""}`, async () => {
      if ("reason" in torch) return;
      const port = subprocessPort(["env", `ATEN_CPU_CAPABILITY=${capability}`, ...torch.command]);
      const report = await runSuite([port], { policy: EXACT, filter: { ids: CASES } });
      const { name, capabilities, results, error } = report.ports[0]!;
      expect(error).toBeUndefined();
      const version = /^torch (\d+)\.(\d+)/.exec(name);
      expect(version && Number(version[1]) * 100 + Number(version[2]), `${name}: torch >= 2.6 is needed`).toBeGreaterThanOrEqual(206);
      // One profile, the one torch runs; the other profile's cases are skipped, never passed.
      expect(capabilities!.profiles).toHaveLength(1);
      const [profile] = capabilities!.profiles;
      const own = results.filter((r) => r.profile === profile);
      expect(own.map((r) => `${r.id}: ${r.status} ${r.firstDivergence ?? r.reason ?? ""}`).filter((line) => !line.includes(": pass"))).toEqual([]);
      expect(own.map((r) => r.id).sort()).toEqual(expect.arrayContaining(["options/defaults/bfloat16/foreach", "options/defaults/float16/forloop", "structure/state-dict-reload/float32/foreach", "structure/state-dict-reload/float64/forloop"]));
      expect(own).toHaveLength(12);
      expect(results.filter((r) => r.profile !== profile).every((r) => r.status === "skip")).toBe(true);
      expect(conformant(report)).toBe(true);
    });
  }
});
