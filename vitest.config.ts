import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["spec/**/*.test.ts", "tensor/**/*.test.ts", "impl/**/*.test.ts", "examples/**/*.test.ts", "checkpoint/**/*.test.ts", "cli/**/*.test.ts", "golden/**/*.test.ts", "conformance/**/*.test.ts", "scripts/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    reporters: ["default", "./test/support/closing-line-reporter.ts"],
  },
});
