#!/usr/bin/env node
// The `nadam-reference` command.
import { main } from "./main.ts";

// A reader that goes away (`validate f | head -1`) is not an error of ours: stop writing, quietly.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2));
// The command is done: whatever a port left behind (a handle, a timer) must not keep the process alive.
setTimeout(() => process.exit(), 2000).unref();
