/**
 * A port in any language: a command the suite starts and talks to over
 * stdin/stdout, one JSON object per line (messages defined by
 * conformance/protocol.schema.json, the contract in INTERPRETING.md). Requests carry an `id`; the
 * port answers each with the same `id`, `"ok": true` and the result, or
 * `"ok": false` and `{"error": {"type", "message"}}`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { ACCEPTED_PROTOCOLS, PROTOCOL_VERSION, UnsupportedError, type OpenRequest, type Port, type PortCapabilities, type PortSession, type StepReply } from "./port.ts";

export interface SubprocessOptions {
  /** Seconds to wait for any one answer. */
  readonly timeoutSeconds?: number;
  /** Sees every message, both ways (for logs, and the protocol's own tests). */
  readonly onMessage?: (direction: "request" | "reply", message: Record<string, unknown>) => void;
}

/** A command line: split on spaces, with "double quotes" grouping. */
export function parseCommand(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

export function subprocessPort(command: readonly string[], options: SubprocessOptions = {}): Port {
  let child: ChildProcessWithoutNullStreams | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let stderr = "";
  const timeout = (options.timeoutSeconds ?? 60) * 1000;

  const start = (): ChildProcessWithoutNullStreams => {
    if (child) return child;
    const [program, ...args] = command;
    if (!program) throw new Error("an empty port command");
    const proc = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    proc.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    createInterface({ input: proc.stdout }).on("line", (line) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return; // not a protocol line: ignored (a port may print logs to stdout by mistake)
      }
      options.onMessage?.("reply", message);
      const waiter = pending.get(message.id as number);
      if (!waiter) return;
      pending.delete(message.id as number);
      clearTimeout(waiter.timer);
      if (message.ok === true) waiter.resolve(message);
      else {
        const error = (message.error ?? {}) as { type?: string; message?: string };
        if (error.type === "unsupported") waiter.reject(new UnsupportedError(error.message ?? "the port does not support this"));
        else waiter.reject(new Error(`${error.type ?? "Error"}: ${error.message ?? "the port reported an error"}`));
      }
    });
    proc.on("exit", (code) => {
      for (const [, w] of pending) {
        clearTimeout(w.timer);
        w.reject(new Error(`the port exited (code ${code}) before answering${stderr ? `; its stderr ends: ${stderr.trim().split("\n").slice(-3).join(" | ")}` : ""}`));
      }
      pending.clear();
      child = undefined;
    });
    proc.on("error", (error) => {
      for (const [, w] of pending) w.reject(new Error(`cannot run the port ${JSON.stringify(command.join(" "))}: ${error.message}`));
      pending.clear();
    });
    child = proc;
    return proc;
  };

  const call = (op: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    const proc = start();
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the port did not answer '${op}' within ${timeout / 1000} s`));
      }, timeout);
      pending.set(id, { resolve, reject, timer });
      const message = { id, op, ...fields };
      options.onMessage?.("request", message);
      proc.stdin.write(JSON.stringify(message) + "\n");
    });
  };

  let hello: Promise<Record<string, unknown>> | undefined;
  let greetedName: string | undefined;
  const greet = () => (hello ??= call("hello", { protocol: PROTOCOL_VERSION }).then((reply) => {
    if (!ACCEPTED_PROTOCOLS.includes(reply.protocol as string)) {
      throw new Error(`the port speaks ${JSON.stringify(reply.protocol)}; the suite speaks ${PROTOCOL_VERSION} and accepts ${ACCEPTED_PROTOCOLS.join(", ")}`);
    }
    if (typeof reply.name === "string") greetedName = reply.name;
    return reply;
  }));

  return {
    /** The name the port gives in its hello, once it has been greeted; the command line before. */
    get name() {
      return greetedName ?? command.join(" ");
    },
    async capabilities() {
      return (await greet()).capabilities as PortCapabilities;
    },
    async open(request: OpenRequest): Promise<PortSession> {
      await greet();
      const session = (await call("open", { request })).session as number;
      return {
        step: async (grads) => (await call("step", { session, grads })) as unknown as StepReply,
        set: async (group, key, value) => void (await call("set", { session, group, key, value })),
        addParamGroup: async (options, params) => void (await call("add_param_group", { session, options, params })),
        stateDict: async () => (await call("state_dict", { session })).state_dict as never,
        loadStateDict: async (state_dict) => void (await call("load_state_dict", { session, state_dict })),
        close: async () => void (await call("close", { session })),
      };
    },
    async dispose() {
      if (!child) return;
      const proc = child;
      await call("bye").catch(() => undefined);
      proc.stdin.end();
      if (proc.exitCode === null) proc.kill();
    },
  };
}
