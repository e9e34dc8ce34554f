/**
 * Test harness for the demo app (`examples/app/server.ts`): runs it as a real child process,
 * reads its lifecycle log, talks HTTP to it, and always kills it after the test.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import { waitFor } from "../helpers/waitFor.ts";

export const APP_SCRIPT = fileURLToPath(new URL("../../examples/app/server.ts", import.meta.url));

/** One line of the app's lifecycle log. */
export interface AppEvent {
  event: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DemoApp {
  child: ChildProcess;
  pid: number;
  /** Lifecycle events so far, in order. */
  events: AppEvent[];
  /** Resolves when the process has exited. */
  exited: Promise<Exit>;
  /** Everything the app wrote to stderr so far. */
  stderr(): string;
  /** The first event named `event` (already logged or still to come). */
  waitForEvent(event: string, timeoutMs?: number): Promise<AppEvent>;
}

export interface RunningDemoApp extends DemoApp {
  port: number;
}

interface Cleanup {
  after(fn: () => Promise<void> | void): void;
}

export interface SpawnOptions {
  /** Added to a clean environment (the test runner's own app knobs are dropped). */
  env?: Record<string, string>;
  /** Arguments after the script; default `--port 0`. */
  args?: string[];
  /** Replaces the whole command line after the node binary (script included). */
  argv?: string[];
  cwd?: string;
}

/** Variables the app reads: never inherited from whoever runs the tests. */
const APP_VARIABLES =
  /^(FAULT_|APP_|HOMEOSTAT_|PORT$|WORKERS$|WORK_MS$|AUTH_DISABLED$|POLICY_HASH$|ADMIN_TOKEN$)/;

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!APP_VARIABLES.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Start the app and register its removal on `t`; does not wait for it to listen. */
export function spawnDemoApp(t: Cleanup, options: SpawnOptions = {}): DemoApp {
  const argv = options.argv ?? [APP_SCRIPT, ...(options.args ?? ["--port", "0"])];
  const child = spawn(process.execPath, argv, {
    stdio: ["ignore", "pipe", "pipe"],
    env: cleanEnv(options.env ?? {}),
    cwd: options.cwd,
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  t.after(() => killChild(child, exited));
  if (child.pid === undefined) throw new Error("the demo app did not start");

  const events: AppEvent[] = [];
  let pending = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") events.push(JSON.parse(line) as AppEvent);
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
  });

  return {
    child,
    pid: child.pid,
    events,
    exited,
    stderr: () => stderr,
    waitForEvent: (event, timeoutMs = 15_000) =>
      waitFor(() => events.find((e) => e.event === event), {
        what: `event "${event}" (events so far: ${events.map((e) => e.event).join(", ")}; stderr: ${stderr})`,
        timeoutMs,
      }),
  };
}

/** Start the app, wait until it listens, and register its removal on `t`. */
export async function startDemoApp(t: Cleanup, options: SpawnOptions = {}): Promise<RunningDemoApp> {
  const app = spawnDemoApp(t, options);
  const listening = await Promise.race([
    app.waitForEvent("listening"),
    app.exited.then((exit) => {
      throw new Error(`the demo app exited (${exit.code ?? exit.signal}) before listening: ${app.stderr()}`);
    }),
  ]);
  return { ...app, port: listening.port as number };
}

async function killChild(child: ChildProcess, exited: Promise<Exit>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await exited;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  elapsedMs: number;
}

export interface HttpOptions {
  method?: string;
  body?: string;
  /** Abort the request after this long, rejecting with `HttpTimeoutError` (default 10 s). */
  timeoutMs?: number;
  host?: string;
}

/** The request got no complete answer within its `timeoutMs`. */
export class HttpTimeoutError extends Error {
  override name = "HttpTimeoutError";
}

/** One HTTP request on a fresh connection (no keep-alive: nothing lingers between tests). */
export function http(port: number, path: string, options: HttpOptions = {}): Promise<HttpResult> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: options.host ?? "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        agent: false,
        signal: timeout,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            elapsedMs: performance.now() - started,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", (error) => {
      reject(timeout.aborted ? new HttpTimeoutError(`no answer within ${timeoutMs}ms`) : error);
    });
    req.end(options.body);
  });
}

/** `http` then `JSON.parse` of the body. */
export async function httpJson<T = Record<string, unknown>>(
  port: number,
  path: string,
  options: HttpOptions = {},
): Promise<{ status: number; json: T; headers: HttpResult["headers"] }> {
  const result = await http(port, path, options);
  return { status: result.status, json: JSON.parse(result.body) as T, headers: result.headers };
}

/** Resolves once `exited` has, or rejects after `timeoutMs`. */
export async function exitWithin(app: DemoApp, timeoutMs: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the demo app did not exit within ${timeoutMs}ms`)), timeoutMs);
  });
  try {
    return await Promise.race([app.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
