/**
 * A port in any language: a command the suite starts and talks to over
 * stdin/stdout, one JSON object per line (messages defined by
 * conformance/protocol.schema.json, the contract in INTERPRETING.md). Requests carry an `id`; the
 * port answers each with the same `id`, `"ok": true` and the result, or
 * `"ok": false` and `{"error": {"type", "message"}}`.
 *
 * The port is not trusted: it may crash, hang, close its pipes, write
 * without end, break the protocol, ignore signals or leave processes behind.
 * A crash costs the case it happened in (the next request starts a new process,
 * which is greeted again); anything else declares the port dead once, and
 * every later request fails at once with the reason (PortDeadError). The
 * process runs in a process group of its own; ending it signals the group and
 * every descendant found, SIGTERM then SIGKILL, and says what it took.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { ACCEPTED_PROTOCOLS, capabilitiesProblem, PortDeadError, PROTOCOL_VERSION, UnsupportedError, type OpenRequest, type Port, type PortCapabilities, type PortSession, type StepReply } from "./port.ts";

export interface SubprocessOptions {
  /** Seconds to wait for any one answer; a port that takes longer is declared dead. Default 60. */
  readonly timeoutSeconds?: number;
  /** Seconds to wait for the hello of a process just started (starting may take longer than answering). Default: timeoutSeconds. */
  readonly startSeconds?: number;
  /** Longest line a port may write, in bytes; a longer one declares it dead. Default 64 MiB (a step of the largest case is under 1 MiB). */
  readonly maxLineBytes?: number;
  /** Seconds the port gets to exit after `bye`, and again after SIGTERM, before the next signal. Default 2. */
  readonly graceSeconds?: number;
  /** Sees every message, both ways (for logs, and the protocol's own tests). */
  readonly onMessage?: (direction: "request" | "reply", message: Record<string, unknown>) => void;
}

export const DEFAULT_MAX_LINE_BYTES = 64 * 2 ** 20;

/** A command line: split on spaces, with "double quotes" grouping. */
export function parseCommand(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** Every process descended from `root` (Linux: /proc); [] where /proc cannot be read. */
export function descendants(root: number): number[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) for (const child of children.get(queue.shift()!) ?? []) out.push(child), queue.push(child);
  return out;
}

function signal(pids: Iterable<number>, sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** Whether a process runs (a zombie, killed and waiting to be reaped by whoever adopted it, does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: signal 0 is all there is
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Process groups of ports still running: killed if the suite itself exits first. */
const LIVE_GROUPS = new Set<number>();
process.once("exit", () => signal([...LIVE_GROUPS].map((g) => -g), "SIGKILL"));

interface Pending {
  readonly op: string;
  readonly resolve: (v: Record<string, unknown>) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** One running process of the port. */
interface Running {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly exited: Promise<void>;
  hasExited: boolean;
  greeting?: Promise<Record<string, unknown>>;
}

export function subprocessPort(command: readonly string[], options: SubprocessOptions = {}): Port {
  const timeout = (options.timeoutSeconds ?? 60) * 1000;
  const startTimeout = (options.startSeconds ?? timeout / 1000) * 1000;
  const maxLine = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const grace = (options.graceSeconds ?? 2) * 1000;
  const pending = new Map<number, Pending>();
  let running: Running | undefined;
  let nextId = 1;
  let stderr = "";
  let dead: string | undefined;
  let greetedName: string | undefined;
  /** What ending the port's processes took, for the report. */
  const notes: string[] = [];
  let ending: Promise<void> | undefined;

  const rejectAll = (error: () => Error): void => {
    for (const [, w] of pending) {
      clearTimeout(w.timer);
      w.reject(error());
    }
    pending.clear();
  };

  /** End a process and everything it started: SIGTERM, then SIGKILL after the grace period. */
  const end = async (r: Running, seen: readonly number[] = []): Promise<void> => {
    const pid = r.proc.pid;
    if (pid === undefined) return;
    // Descendants in sessions of their own (setsid) leave the group: found through /proc while the port lives, or seen before.
    const tree = new Set([...seen, ...(r.hasExited ? [] : descendants(pid))]);
    const group = -pid;
    const lingering = r.hasExited ? [...tree].filter(alive) : [];
    if (lingering.length > 0) notes.push(`it left ${lingering.length} process${lingering.length === 1 ? "" : "es"} running after it exited (pid ${lingering.join(", ")}), ended with it`);
    if (!r.hasExited || lingering.length > 0) {
      signal([group, pid, ...tree], "SIGTERM");
      await Promise.race([r.exited, sleep(grace)]);
      for (const p of descendants(pid)) tree.add(p);
      await sleep(Math.min(grace, 100)); // children that handle SIGTERM need a moment too
      const stubborn = [...(r.hasExited ? [] : [pid]), ...[...tree].filter(alive)];
      if (stubborn.length > 0) {
        signal([group, ...stubborn], "SIGKILL");
        notes.push(`${r.hasExited ? "" : "the port ignored SIGTERM; "}${stubborn.length} process${stubborn.length === 1 ? "" : "es"} (pid ${stubborn.join(", ")}) killed with SIGKILL`);
        await Promise.race([r.exited, sleep(grace)]);
      }
    }
    signal([group], "SIGKILL"); // anything left in its group
    LIVE_GROUPS.delete(pid);
  };

  /** Declare the port dead: no request is sent again, every waiting one fails now, its processes end. */
  const die = (reason: string): void => {
    if (dead !== undefined) return;
    dead = reason;
    rejectAll(() => new PortDeadError(reason));
    const r = running;
    running = undefined;
    if (r) ending = end(r);
  };

  const onMessage = (line: string): void => {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return; // not a protocol line: ignored (a port may print logs to stdout by mistake)
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) return die(`answered ${line.slice(0, 80)}, not a JSON object`);
    const m = message as Record<string, unknown>;
    options.onMessage?.("reply", m);
    const waiter = typeof m.id === "number" ? pending.get(m.id) : undefined;
    if (!waiter) return die(`answered with id ${JSON.stringify(m.id)?.slice(0, 40)}, which no waiting request has (the protocol: each answer carries its request's numeric id)`);
    pending.delete(m.id as number);
    clearTimeout(waiter.timer);
    if (m.ok === true) waiter.resolve(m);
    else {
      const error = (typeof m.error === "object" && m.error !== null ? m.error : {}) as { type?: unknown; message?: unknown };
      const text = typeof error.message === "string" ? error.message : undefined;
      if (error.type === "unsupported") waiter.reject(new UnsupportedError(text ?? "the port does not support this"));
      else waiter.reject(new Error(`${typeof error.type === "string" ? error.type : "Error"}: ${text ?? "the port reported an error"}`));
    }
  };

  const request = (r: Running, op: string, fields: Record<string, unknown>, ms: number): Promise<Record<string, unknown>> => {
    if (dead !== undefined) return Promise.reject(new PortDeadError(dead));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        const reason = `did not answer '${op}' within ${ms / 1000} s`;
        reject(new PortDeadError(reason));
        die(reason);
      }, ms);
      pending.set(id, { op, resolve, reject, timer });
      const message = { id, op, ...fields };
      options.onMessage?.("request", message);
      r.proc.stdin.write(JSON.stringify(message) + "\n");
    });
  };

  const greet = (r: Running): Promise<Record<string, unknown>> =>
    (r.greeting ??= request(r, "hello", { protocol: PROTOCOL_VERSION }, startTimeout).then((reply) => {
      if (!ACCEPTED_PROTOCOLS.includes(reply.protocol as string)) {
        const reason = `the port speaks ${JSON.stringify(reply.protocol)}; the suite speaks ${PROTOCOL_VERSION} and accepts ${ACCEPTED_PROTOCOLS.join(", ")}`;
        die(reason);
        throw new PortDeadError(reason);
      }
      const problem = capabilitiesProblem(reply.capabilities);
      if (problem !== undefined) {
        die(problem);
        throw new PortDeadError(problem);
      }
      if (typeof reply.name === "string") greetedName ??= reply.name;
      return reply;
    }));

  const start = (): Running => {
    if (dead !== undefined) throw new PortDeadError(dead);
    if (running) return running;
    const [program, ...args] = command;
    if (!program) throw new Error("an empty port command");
    // detached: a process group of its own, so that ending it reaches what it started.
    const proc = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"], detached: true });
    let markExited: () => void = () => undefined;
    const r: Running = { proc, exited: new Promise<void>((resolve) => (markExited = resolve)), hasExited: false };
    if (proc.pid !== undefined) LIVE_GROUPS.add(proc.pid);
    proc.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString("utf8", 0, Math.min(d.length, 4000))).slice(-4000)));
    // A port that closes its stdin, or exits, makes writes fail with EPIPE: the exit (or the timeout) tells the waiting requests.
    proc.stdin.on("error", () => undefined);
    proc.stdout.on("error", () => undefined);
    proc.stderr.on("error", () => undefined);
    // Lines, bounded: a port's line is held only up to maxLine bytes.
    let parts: Buffer[] = [];
    let held = 0;
    proc.stdout.on("data", (chunk: Buffer) => {
      let from = 0;
      while (from < chunk.length) {
        if (running !== r) return; // declared dead or replaced: nothing more is read from it
        const newline = chunk.indexOf(0x0a, from);
        const piece = chunk.subarray(from, newline < 0 ? chunk.length : newline);
        if (held + piece.length > maxLine) return die(`wrote a line longer than ${maxLine} bytes`);
        if (newline < 0) {
          parts.push(piece);
          held += piece.length;
          return;
        }
        const line = Buffer.concat([...parts, piece]).toString("utf8");
        parts = [];
        held = 0;
        from = newline + 1;
        onMessage(line);
      }
    });
    proc.on("exit", (code, sig) => {
      r.hasExited = true;
      markExited();
      if (running !== r) return;
      running = undefined;
      const tail = stderr ? `; its stderr ends: ${stderr.trim().split("\n").slice(-3).join(" | ")}` : "";
      rejectAll(() => new Error(`the port exited (${sig ? `signal ${sig}` : `code ${code}`}) before answering${tail}`));
      // What it left running in its group is ended now; the next request starts a new process.
      ending = end(r);
    });
    proc.on("error", (error) => die(`cannot run the port ${JSON.stringify(command.join(" "))}: ${error.message}`));
    running = r;
    return r;
  };

  /** A request to the running process (started and greeted first if need be). */
  const call = async (op: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    const r = start();
    await greet(r);
    return request(r, op, fields, timeout);
  };

  return {
    /** The name the port gives in its hello, once it has been greeted; the command line before. */
    get name() {
      return greetedName ?? command.join(" ");
    },
    /** Why the port was declared dead, once it was. */
    get dead() {
      return dead;
    },
    async capabilities() {
      return (await greet(start())).capabilities as PortCapabilities;
    },
    async open(request: OpenRequest): Promise<PortSession> {
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
      const r = running;
      const seen = r?.proc.pid !== undefined && !r.hasExited ? descendants(r.proc.pid) : [];
      if (r && !r.hasExited && dead === undefined) {
        await request(r, "bye", {}, grace).catch(() => undefined);
        r.proc.stdin.end();
        await Promise.race([r.exited, sleep(grace)]);
        if (!r.hasExited) notes.push(`the port did not exit within ${grace / 1000} s of bye and its stdin closing`);
      }
      if (running === r) running = undefined;
      rejectAll(() => new Error("the port was disposed"));
      await ending;
      if (r) await end(r, seen);
      return notes.length > 0 ? notes.join("; ") : undefined;
    },
  };
}
