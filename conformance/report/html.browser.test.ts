/**
 * The HTML report in a real browser (headless Chromium: CHROMIUM_PATH, else
 * Debian's chromium, else the one in the @sparticuz/chromium devDependency; see
 * test/support/browser.ts): it renders, its matrix and plots have data, and the
 * page logs no error.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { expect, test } from "vitest";
import { testBrowser } from "../../test/support/browser.ts";
import { DEFAULT } from "../policy.ts";
import { specPort } from "../spec-port.ts";
import { runSuite } from "../suite.ts";
import { writeReports } from "./write.ts";

test("the HTML report renders in headless Chromium, with a matrix, plots with data and no console error", async () => {
  const { source, options } = await testBrowser();
  expect(existsSync(options.executablePath), `no browser at ${source}`).toBe(true);
  const report = await runSuite([specPort(), specPort({ formula: "torch-1.13", name: "torch 1.13 formula" })], { policy: DEFAULT, filter: { tags: ["options"], dtypes: ["float32"] } });
  const dir = mkdtempSync(join(tmpdir(), "nadam-report-"));
  writeReports(report, dir);
  const browser = await chromium.launch(options);
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`file://${join(dir, "report.html")}`);
    expect(await page.title()).toBe("NAdam conformance report");
    expect(await page.locator("#matrix tr").count()).toBe(3); // header + two ports
    expect(await page.locator(".case.fail").count()).toBeGreaterThan(0);
    const points = await page.locator(".case.fail svg.plot polyline").first().getAttribute("points");
    expect(points?.trim().split(/\s+/).length).toBeGreaterThan(1);
    expect(await page.locator(".case.fail .diagnosis").first().textContent()).toMatch(/old-mu-product-next/);
    const box = await page.locator(".case.fail svg.plot").first().boundingBox();
    expect(box!.width).toBeGreaterThan(100);
    await page.screenshot({ path: join(dir, "report.png"), fullPage: false });
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}, 60_000);
