/**
 * The V8 profiler of another Node process, over its inspector (the DevTools protocol on a
 * WebSocket): `--cpu-prof` would profile the whole life of the controller, start-up and shutdown
 * included, when only the steady window matters.
 */

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** A DevTools-protocol session with one process. */
export class InspectorSession {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  #next = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      if (message.id === undefined) return;
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      if (message.error) pending.reject(new Error(message.error.message));
      else pending.resolve(message.result);
    });
    socket.addEventListener("close", () => {
      for (const pending of this.#pending.values()) pending.reject(new Error("inspector closed"));
      this.#pending.clear();
    });
  }

  /** Connect to `url` (ws://127.0.0.1:PORT/UUID, as the process printed it). */
  static connect(url: string): Promise<InspectorSession> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.addEventListener("open", () => resolve(new InspectorSession(socket)), { once: true });
      socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), {
        once: true,
      });
    });
  }

  call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#socket.close();
  }
}

/** A V8 CPU profile (`.cpuprofile`), as Chrome DevTools and speedscope read it. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Start sampling every `intervalUs`; the returned function stops and returns the profile. */
export async function startProfiling(
  session: InspectorSession,
  intervalUs = 1000,
): Promise<() => Promise<CpuProfile>> {
  await session.call("Profiler.enable");
  await session.call("Profiler.setSamplingInterval", { interval: intervalUs });
  await session.call("Profiler.start");
  return async () => (await session.call<{ profile: CpuProfile }>("Profiler.stop")).profile;
}

/** One line of a profile summary: a function and the time spent in it. */
export interface ProfileLine {
  fn: string;
  ms: number;
  /** Share of the sampled busy time (idle excluded). */
  share: number;
}

export interface ProfileSummary {
  sampledMs: number;
  idleMs: number;
  /** Functions by self time, then by inclusive time (each frame counted once per sample). */
  self: ProfileLine[];
  inclusive: ProfileLine[];
}

/** Where the busy time went: the `top` functions by self and by inclusive time. */
export function summarizeProfile(profile: CpuProfile, top = 30): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const timeOf = new Map<number, number>();
  profile.samples.forEach((id, k) => {
    timeOf.set(id, (timeOf.get(id) ?? 0) + (profile.timeDeltas[k] ?? 0));
  });
  const name = (id: number): string => {
    const f = byId.get(id)!.callFrame;
    const file = f.url.replace(/^.*\/(node_modules|src|bench|test)\//, "$1/").replace(/^file:\/\//, "");
    return `${f.functionName || "(anonymous)"} ${file}${file ? `:${f.lineNumber + 1}` : ""}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, us] of timeOf) {
    total += us;
    const key = name(id);
    self.set(key, (self.get(key) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = name(cur);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const idle = [...self].filter(([k]) => k.startsWith("(idle)")).reduce((sum, [, us]) => sum + us, 0);
  const busy = Math.max(1, total - idle);
  const lines = (map: Map<string, number>): ProfileLine[] =>
    [...map]
      .filter(([k]) => !k.startsWith("(idle)") && !k.startsWith("(root)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: us / 1000, share: us / busy }));
  return { sampledMs: total / 1000, idleMs: idle / 1000, self: lines(self), inclusive: lines(inclusive) };
}
