/**
 * The Chromium that browser tests launch through playwright-core: CHROMIUM_PATH
 * when set; else Debian's /usr/bin/chromium when it is installed; else the
 * headless Chromium shipped inside the `@sparticuz/chromium` devDependency,
 * unpacked into the temp folder on first use. NADAM_BROWSER=npm forces the npm
 * one (to check that path on a machine that has a system browser).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import type { LaunchOptions } from "playwright-core";

const DEBIAN = "/usr/bin/chromium";

/** The network is closed: nothing in the background may try to reach it. */
const OFFLINE = ["--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"];

/** Of the package's recommended flags, these would hide errors a normal browser reports. */
const UNSAFE = new Set(["--disable-web-security", "--allow-running-insecure-content"]);

export interface TestBrowser {
  /** Where the browser came from, for messages. */
  readonly source: string;
  readonly options: LaunchOptions & { readonly executablePath: string };
}

export async function testBrowser(): Promise<TestBrowser> {
  if (process.env.NADAM_BROWSER === "npm") return npmChromium();
  const given = process.env.CHROMIUM_PATH;
  if (given !== undefined && given !== "") return system(given, "CHROMIUM_PATH");
  if (existsSync(DEBIAN)) return system(DEBIAN, "Debian's chromium");
  return npmChromium();
}

function system(executablePath: string, source: string): TestBrowser {
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return { source: `${source} (${executablePath})`, options: { executablePath, args: ["--headless", "--no-sandbox", "--disable-gpu", ...OFFLINE] } };
}

/**
 * @sparticuz/chromium's headless shell with its recommended flags (they include
 * --no-sandbox and --single-process). It links libnss3, libnspr4 and libexpat,
 * which a bare machine may lack: the package's own copies go first on the
 * library path, as the package does on Amazon Linux, and its fonts are used.
 */
async function npmChromium(): Promise<TestBrowser> {
  // imported only here: on load, the package adjusts process.env when it thinks it runs on AWS
  const { default: packaged } = await import("@sparticuz/chromium");
  const executablePath = await packaged.executablePath();
  const bin = join(dirname(createRequire(import.meta.url).resolve("@sparticuz/chromium")), "..", "..", "bin");
  const libs = join(tmpdir(), "al2023", "lib");
  if (!existsSync(join(libs, "libnss3.so"))) {
    const scratch = mkdtempSync(join(tmpdir(), "al2023-"));
    execFileSync("tar", ["-x", "-C", scratch], { input: brotliDecompressSync(readFileSync(join(bin, "al2023.tar.br"))) });
    try {
      renameSync(scratch, join(tmpdir(), "al2023"));
    } catch {
      rmSync(scratch, { recursive: true, force: true }); // another process unpacked it first
    }
  }
  const env = { ...process.env, LD_LIBRARY_PATH: [libs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":"), FONTCONFIG_PATH: join(tmpdir(), "fonts") };
  return {
    source: `@sparticuz/chromium (${executablePath})`,
    options: { executablePath, args: [...packaged.args.filter((arg) => !UNSAFE.has(arg)), ...OFFLINE], env },
  };
}
