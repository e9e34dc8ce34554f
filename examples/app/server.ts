/**
 * The Homeostat demo app: a small HTTP service (node:http only, no dependencies) that the example
 * fleets run and that can be told to misbehave — crash, hang, fail, slow down, start slowly or
 * never become ready — from the environment, from `HOMEOSTAT_CONFIG`, or live through a fault API.
 * It can also be given a real capacity (`WORKERS` slots of `WORK_MS` each) that saturates like a
 * real server, with counters (`GET /stats`) to measure its utilization from outside.
 *
 * Demos, tests and benchmarks rely on its exact behaviour: `examples/README.md` is its contract.
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 2 for a bad command line or configuration, 1 when the port
 * cannot be bound, and the configured `exitCode` (default 1) for an injected crash.
 */

import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";

/** Longest delay `setTimeout` honours: anything larger silently fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;
/** Homeostat's default stop grace is 5 s: be gone well before its SIGKILL. */
const SHUTDOWN_DEADLINE_MS = 4_000;
/** Leaves at least a second of the deadline for in-flight requests. */
const MAX_DRAIN_DELAY_MS = 3_000;
const MAX_WORK_MS = 600_000;
/** Most simulated worker slots (`WORKERS`): far above anything a demo needs, low enough to catch a typo. */
const MAX_WORKERS = 10_000;
const MAX_FAULT_BODY_BYTES = 64 * 1024;
/**
 * The app's permission policy: who may do what. `/policy` reports its hash, so that Homeostat can
 * check every instance enforces the same one (docs/security-invariants.md).
 */
const PERMISSION_POLICY = { admin: ["GET /admin"], viewer: ["GET /", "GET /work", "GET /stats"] };
const DEFAULT_POLICY_HASH = createHash("sha256").update(JSON.stringify(PERMISSION_POLICY)).digest("hex");
const POLICY_HASH_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

const USAGE = `usage: node examples/app/server.ts [--port N] [--name NAME]
  --port N     port to listen on, 127.0.0.1 only (else $PORT, else 8080; 0 = any free port)
  --name NAME  instance name shown in responses and logs (else $HOMEOSTAT_INSTANCE, else "app")
Faults and the rest of the knobs: see examples/README.md.`;

// ---------------------------------------------------------------------------------------------
// Fault settings

type FaultKind = "ms" | "rate" | "exitCode" | "flag";

/** Every fault, with its environment variable. The camelCase names are used in JSON. */
const FAULT_FIELDS = {
  crashAfterMs: { env: "FAULT_CRASH_AFTER_MS", kind: "ms" },
  hangAfterMs: { env: "FAULT_HANG_AFTER_MS", kind: "ms" },
  errorRate: { env: "FAULT_ERROR_RATE", kind: "rate" },
  latencyMs: { env: "FAULT_LATENCY_MS", kind: "ms" },
  slowStartMs: { env: "FAULT_SLOW_START_MS", kind: "ms" },
  exitCode: { env: "FAULT_EXIT_CODE", kind: "exitCode" },
  readyFail: { env: "FAULT_READY_FAIL", kind: "flag" },
} as const satisfies Record<string, { env: string; kind: FaultKind }>;

type FaultName = keyof typeof FAULT_FIELDS;
const FAULT_NAMES = Object.keys(FAULT_FIELDS) as FaultName[];

type FaultValue<K extends FaultKind> = K extends "flag" ? boolean : number;

/** The faults in force. An absent field is off. */
type Faults = { [N in FaultName]?: FaultValue<(typeof FAULT_FIELDS)[N]["kind"]> };

/** A change to the faults: a value sets a field, `null` switches it off, absent leaves it alone. */
type FaultPatch = Partial<Record<FaultName, number | boolean | null>>;

/** A faulty command line, environment or configuration: reported, then exit 2. */
class ConfigError extends Error {}

const FLAG_WORDS: Record<string, boolean> = {
  "1": true,
  true: true,
  yes: true,
  on: true,
  "0": false,
  false: false,
  no: false,
  off: false,
};

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function checkNumber(kind: Exclude<FaultKind, "flag">, value: number, where: string, raw: unknown): number {
  const ok =
    kind === "rate"
      ? Number.isFinite(value) && value >= 0 && value <= 1
      : Number.isInteger(value) && value >= 0 && value <= (kind === "ms" ? MAX_TIMER_MS : 255);
  if (ok) return value;
  const expected =
    kind === "rate"
      ? "a number from 0 to 1"
      : kind === "ms"
        ? `whole milliseconds from 0 to ${MAX_TIMER_MS}`
        : "an exit code from 0 to 255";
  throw new ConfigError(`${where}: expected ${expected}, got ${describe(raw)}`);
}

function parseFlagWord(raw: string, where: string): boolean {
  const flag = FLAG_WORDS[raw.trim().toLowerCase()];
  if (flag === undefined) {
    throw new ConfigError(`${where}: expected 1/0, true/false, yes/no or on/off, got ${describe(raw)}`);
  }
  return flag;
}

function parseEnvValue(kind: FaultKind, raw: string, where: string): number | boolean {
  if (kind === "flag") return parseFlagWord(raw, where);
  // Number("") is 0: an explicit check keeps a blank from passing as a value.
  return checkNumber(kind, raw.trim() === "" ? Number.NaN : Number(raw), where, raw);
}

function parseJsonValue(kind: FaultKind, raw: unknown, where: string): number | boolean {
  if (kind === "flag") {
    if (typeof raw !== "boolean")
      throw new ConfigError(`${where}: expected true or false, got ${describe(raw)}`);
    return raw;
  }
  if (typeof raw !== "number") throw new ConfigError(`${where}: expected a number, got ${describe(raw)}`);
  return checkNumber(kind, raw, where, raw);
}

/** Faults named in the environment. Empty variables count as unset. */
function faultsFromEnv(env: NodeJS.ProcessEnv): FaultPatch {
  const patch: FaultPatch = {};
  for (const name of FAULT_NAMES) {
    const { env: variable, kind } = FAULT_FIELDS[name];
    const raw = env[variable];
    if (raw !== undefined && raw.trim() !== "") patch[name] = parseEnvValue(kind, raw, variable);
  }
  return patch;
}

/** Faults from a JSON object (config `faults` or a fault API body). Unknown names are errors: typos must not pass silently. */
function faultPatchFromJson(value: unknown, where: string): FaultPatch {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`${where}: expected an object of faults, got ${describe(value)}`);
  }
  const patch: FaultPatch = {};
  for (const [key, raw] of Object.entries(value)) {
    if (!Object.hasOwn(FAULT_FIELDS, key)) {
      throw new ConfigError(`${where}.${key}: unknown fault (known: ${FAULT_NAMES.join(", ")})`);
    }
    const name = key as FaultName;
    patch[name] = raw === null ? null : parseJsonValue(FAULT_FIELDS[name].kind, raw, `${where}.${key}`);
  }
  return patch;
}

function applyPatch(faults: Faults, patch: FaultPatch): Faults {
  const next: Record<string, number | boolean> = { ...faults };
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete next[name];
    else if (value !== undefined) next[name] = value;
  }
  return next as Faults;
}

// ---------------------------------------------------------------------------------------------
// Settings: command line, then environment, then HOMEOSTAT_CONFIG (which wins)

interface Settings {
  port: number;
  name: string;
  version: string;
  greeting: string;
  faults: Faults;
  drainDelayMs: number;
  faultApi: boolean;
  /** Simulated capacity of `/`: `workMs` 0 means off (answered at once, no slot). */
  workers: number;
  workMs: number;
  /** Accepted by `/admin` as `Authorization: Bearer <token>`; none: every credential is refused (403). */
  adminToken: string | undefined;
  /** `/admin` answers 200 to anyone: a fail-open guard, for security-invariant drills. */
  authDisabled: boolean;
  /** What `/policy` reports (default: the hash of {@link PERMISSION_POLICY}). */
  policyHash: string;
}

interface AppConfig {
  greeting?: string;
  drainDelayMs?: number;
  faults: FaultPatch;
}

function parseConfig(text: string | undefined): AppConfig {
  if (text === undefined || text.trim() === "") return { faults: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`HOMEOSTAT_CONFIG: not valid JSON (${(error as Error).message})`);
  }
  if (value === null) return { faults: {} };
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`HOMEOSTAT_CONFIG: expected a JSON object, got ${describe(value)}`);
  }
  // Other keys belong to whoever wrote the fleet file: only the app's own ones are checked.
  const { greeting, drainDelayMs, faults } = value as Record<string, unknown>;
  const config: AppConfig = {
    faults:
      faults === undefined || faults === null ? {} : faultPatchFromJson(faults, "HOMEOSTAT_CONFIG.faults"),
  };
  if (greeting !== undefined) {
    if (typeof greeting !== "string") {
      throw new ConfigError(`HOMEOSTAT_CONFIG.greeting: expected a string, got ${describe(greeting)}`);
    }
    config.greeting = greeting;
  }
  if (drainDelayMs !== undefined) {
    config.drainDelayMs = parseDrainDelay(drainDelayMs, "HOMEOSTAT_CONFIG.drainDelayMs");
  }
  return config;
}

function parseDrainDelay(raw: unknown, where: string): number {
  const value = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_DRAIN_DELAY_MS) {
    throw new ConfigError(
      `${where}: expected whole milliseconds from 0 to ${MAX_DRAIN_DELAY_MS}, got ${describe(raw)}`,
    );
  }
  return value;
}

function parsePort(raw: string, where: string): number {
  const port = raw.trim() === "" ? Number.NaN : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${where}: expected a port from 0 to 65535, got ${describe(raw)}`);
  }
  return port;
}

/** A whole number from `min` to `max` in an environment variable, or `fallback` when unset. */
function parseEnvInteger(
  env: NodeJS.ProcessEnv,
  variable: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const raw = nonEmpty(env[variable]);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${variable}: expected a whole number from ${min} to ${max}, got ${describe(raw)}`);
  }
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings | "help" {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (parsed.help) return "help";

  const portText = nonEmpty(parsed.port) ?? nonEmpty(env.PORT);
  const port =
    portText === undefined ? 8080 : parsePort(portText, parsed.port !== undefined ? "--port" : "PORT");
  const name = nonEmpty(parsed.name) ?? nonEmpty(env.HOMEOSTAT_INSTANCE) ?? "app";
  const version = nonEmpty(env.APP_VERSION) ?? nonEmpty(env.HOMEOSTAT_RELEASE) ?? "dev";
  const config = parseConfig(env.HOMEOSTAT_CONFIG);
  const envDrainDelay = nonEmpty(env.APP_DRAIN_DELAY_MS);
  const authDisabledText = nonEmpty(env.AUTH_DISABLED);
  const policyHashText = nonEmpty(env.POLICY_HASH);
  const faultApiText = nonEmpty(env.APP_ALLOW_FAULT_API);

  return {
    port,
    name,
    version,
    greeting: config.greeting ?? "hello",
    faults: applyPatch(applyPatch({}, faultsFromEnv(env)), config.faults),
    drainDelayMs:
      config.drainDelayMs ??
      (envDrainDelay === undefined ? 0 : parseDrainDelay(envDrainDelay, "APP_DRAIN_DELAY_MS")),
    faultApi: faultApiText === undefined ? false : parseFlagWord(faultApiText, "APP_ALLOW_FAULT_API"),
    workers: parseEnvInteger(env, "WORKERS", 1, MAX_WORKERS, 1),
    workMs: parseEnvInteger(env, "WORK_MS", 0, MAX_WORK_MS, 0),
    adminToken: nonEmpty(env.ADMIN_TOKEN),
    authDisabled: authDisabledText === undefined ? false : parseFlagWord(authDisabledText, "AUTH_DISABLED"),
    policyHash:
      policyHashText === undefined ? DEFAULT_POLICY_HASH : parsePolicyHash(policyHashText, "POLICY_HASH"),
  };
}

function parsePolicyHash(raw: unknown, where: string): string {
  if (typeof raw !== "string" || !POLICY_HASH_PATTERN.test(raw.trim())) {
    throw new ConfigError(
      `${where}: expected 1 to 128 letters, digits, ".", "_", ":" or "-", got ${describe(raw)}`,
    );
  }
  return raw.trim();
}

function parseCommandLine(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      name: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  return values;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle log: one JSON line per event on stdout, never one per request

let logIdentity: { instance: string; pid: number } = { instance: "app", pid: process.pid };

function logEvent(event: string, fields: Record<string, unknown> = {}): void {
  // stdout to a file or pipe is synchronous on Linux, so a line written just before a crash or a
  // hang is not lost.
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), event, ...logIdentity, ...fields })}\n`,
  );
}

// ---------------------------------------------------------------------------------------------
// Simulated capacity: WORKERS slots, each held WORK_MS by one request to `/`

/** What `GET /stats` answers: cumulative counters plus the queue as it is now (benches and tests read it). */
export interface WorkStats {
  /** `performance.now()` of this reading, ms since the process started: the app's own clock, for exact intervals. */
  uptimeMs: number;
  /** Requests to `/` answered 200 since the start. */
  served: number;
  /** Slot-milliseconds spent working since the start, the work in progress included. */
  busyMs: number;
  /** Requests waiting for a free slot now. */
  queued: number;
  /** Slots held now. */
  inWork: number;
  /** Requests whose client went away while they waited for a slot (no work was done for them). */
  abandoned: number;
  workers: number;
  workMs: number;
  /** `workers × 1000 / workMs` requests/s; null when the simulated work is off (`WORK_MS` 0). */
  capacityRps: number | null;
}

/**
 * A fixed number of worker slots handed out first come, first served. The work is a timer, not
 * CPU, so many instances on a small machine each have exactly the capacity they declare, and
 * above it the queue, and the latency, grow like a real saturated server's.
 */
class WorkSlots {
  readonly workers: number;
  readonly workMs: number;
  #inWork = 0;
  /** Waiters in arrival order (a Set keeps insertion order and forgets a leaver in O(1)). */
  readonly #waiting = new Set<() => void>();
  /** `performance.now()` at which each slot held now was taken. */
  readonly #holds = new Set<{ since: number }>();
  #busyDoneMs = 0;
  #served = 0;
  #abandoned = 0;

  constructor(workers: number, workMs: number) {
    this.workers = workers;
    this.workMs = workMs;
  }

  /**
   * Holds a slot for `workMs`, after waiting for one in turn. Resolves false, without working,
   * when the client goes away while waiting: a request nobody waits for is not worth a slot.
   */
  async work(res: ServerResponse): Promise<boolean> {
    if (this.workMs === 0) return true;
    // Gone already (during an injected latency, say): its close event will not come again.
    if (res.destroyed) {
      this.#abandoned++;
      return false;
    }
    if (this.#inWork < this.workers && this.#waiting.size === 0) this.#inWork++;
    else if (!(await this.#wait(res))) return false;
    const hold = { since: performance.now() };
    this.#holds.add(hold);
    try {
      await delay(this.workMs);
    } finally {
      this.#holds.delete(hold);
      this.#busyDoneMs += performance.now() - hold.since;
      this.#handOver();
    }
    return true;
  }

  countServed(): void {
    this.#served++;
  }

  stats(): WorkStats {
    const now = performance.now();
    let busyMs = this.#busyDoneMs;
    for (const hold of this.#holds) busyMs += now - hold.since;
    return {
      uptimeMs: Math.round(now * 1000) / 1000,
      served: this.#served,
      busyMs: Math.round(busyMs * 1000) / 1000,
      queued: this.#waiting.size,
      inWork: this.#inWork,
      abandoned: this.#abandoned,
      workers: this.workers,
      workMs: this.workMs,
      capacityRps: this.workMs === 0 ? null : (this.workers * 1000) / this.workMs,
    };
  }

  /** Resolves true once a slot is handed over (already counted in `inWork`), false if the client left first. */
  #wait(res: ServerResponse): Promise<boolean> {
    return new Promise((resolve) => {
      const granted = () => {
        res.off("close", left);
        resolve(true);
      };
      const left = () => {
        this.#waiting.delete(granted);
        this.#abandoned++;
        resolve(false);
      };
      this.#waiting.add(granted);
      res.once("close", left);
    });
  }

  /** A slot is free: the longest waiter gets it (it stays counted in `inWork`), else it is released. */
  #handOver(): void {
    const next = this.#waiting.values().next();
    if (next.done === true) {
      this.#inWork--;
      return;
    }
    this.#waiting.delete(next.value);
    next.value();
  }
}

// ---------------------------------------------------------------------------------------------
// The running app

function run(settings: Settings): void {
  logIdentity = { instance: settings.name, pid: process.pid };

  let faults: Faults = {};
  /** The guard of `/admin` and the policy `/policy` reports: set at start, changed live by `POST /policy`. */
  let authDisabled = settings.authDisabled;
  let policyHash = settings.policyHash;
  /** `performance.now()` before which the app is still "starting". */
  let slowStartUntil = 0;
  let draining = false;
  let inFlight = 0;
  const slots = new WorkSlots(settings.workers, settings.workMs);
  const timers: Partial<Record<"crash" | "hang" | "slowStartOver", NodeJS.Timeout>> = {};

  function crash(): void {
    const exitCode = faults.exitCode ?? 1;
    logEvent("crashing", { fault: "crashAfterMs", exitCode });
    process.exit(exitCode);
  }

  function hangForever(): never {
    logEvent("hanging", { fault: "hangAfterMs" });
    // Blocks the only thread without burning CPU: no request, timer or signal handler ever runs
    // again, like a deadlock. Only SIGKILL (or SIGTERM's default, which the handler below
    // replaced) gets rid of it.
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (;;) Atomics.wait(cell, 0, 0);
  }

  /** (Re)arms the timed faults named in `touched`, counting from `since` (a `performance.now()` time). */
  function armTimedFaults(touched: readonly FaultName[], since: number): void {
    const remaining = (ms: number) => Math.max(0, since + ms - performance.now());
    if (touched.includes("crashAfterMs")) {
      clearTimeout(timers.crash);
      if (faults.crashAfterMs !== undefined) timers.crash = setTimeout(crash, remaining(faults.crashAfterMs));
    }
    if (touched.includes("hangAfterMs")) {
      clearTimeout(timers.hang);
      if (faults.hangAfterMs !== undefined)
        timers.hang = setTimeout(hangForever, remaining(faults.hangAfterMs));
    }
    if (touched.includes("slowStartMs")) {
      clearTimeout(timers.slowStartOver);
      slowStartUntil = faults.slowStartMs === undefined ? 0 : since + faults.slowStartMs;
      if (faults.slowStartMs !== undefined) {
        timers.slowStartOver = setTimeout(
          () => logEvent("slow-start-over", { fault: "slowStartMs" }),
          remaining(faults.slowStartMs),
        );
      }
    }
  }

  function setFaults(next: Faults, touched: readonly FaultName[], since: number): void {
    faults = next;
    armTimedFaults(touched, since);
  }

  function isStarting(): boolean {
    return performance.now() < slowStartUntil;
  }

  // --- responses ---

  function send(res: ServerResponse, status: number, contentType: string, body: string): void {
    if (res.headersSent || res.destroyed) return;
    res.statusCode = status;
    res.setHeader("content-type", contentType);
    res.setHeader("content-length", Buffer.byteLength(body));
    res.setHeader("cache-control", "no-store");
    res.setHeader("x-instance", settings.name);
    // While draining, every connection is closed after its response so the drain can finish.
    if (draining) res.setHeader("connection", "close");
    res.end(body);
  }

  function sendText(res: ServerResponse, status: number, text: string): void {
    send(res, status, "text/plain; charset=utf-8", `${text}\n`);
  }

  function sendJson(res: ServerResponse, status: number, body: unknown): void {
    send(res, status, "application/json; charset=utf-8", `${JSON.stringify(body)}\n`);
  }

  /** Answers 405 unless the method is one of `allowed`. */
  function methodAllowed(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): boolean {
    if (allowed.includes(req.method ?? "")) return true;
    res.setHeader("allow", allowed.join(", "));
    sendJson(res, 405, { error: `method ${req.method} not allowed here (allowed: ${allowed.join(", ")})` });
    return false;
  }

  /**
   * The faults that affect traffic (`/` and `/work`): slow start, latency, error rate. Returns
   * false when the request has been answered with the fault.
   */
  async function survivesTrafficFaults(res: ServerResponse): Promise<boolean> {
    if (isStarting()) {
      sendJson(res, 503, { error: "starting", fault: "slowStartMs" });
      return false;
    }
    if (faults.latencyMs) await delay(faults.latencyMs);
    if (faults.errorRate !== undefined && Math.random() < faults.errorRate) {
      sendJson(res, 500, { error: "injected failure", fault: "errorRate" });
      return false;
    }
    return true;
  }

  function readinessProblem(): string | null {
    if (draining) return "draining";
    if (isStarting()) return "starting";
    if (faults.readyFail) return "fault readyFail";
    return null;
  }

  /** The request body as text, or why there is none to use. */
  async function readBody(req: IncomingMessage): Promise<string | "too-large" | "aborted"> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_FAULT_BODY_BYTES) return "too-large";
        chunks.push(chunk);
      }
    } catch {
      return "aborted";
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  /**
   * The request's JSON body as `parse` reads it (a ConfigError says what is wrong), or undefined
   * once the answer is sent: none to an aborted request, 413 over the size limit, else 400.
   */
  async function readJsonBody<T>(
    req: IncomingMessage,
    res: ServerResponse,
    parse: (json: unknown) => T,
  ): Promise<T | undefined> {
    const body = await readBody(req);
    if (body === "aborted") return undefined;
    if (body === "too-large") {
      res.setHeader("connection", "close");
      sendJson(res, 413, { error: `body larger than ${MAX_FAULT_BODY_BYTES} bytes` });
      return undefined;
    }
    try {
      return parse(JSON.parse(body));
    } catch (error) {
      sendJson(res, 400, { error: error instanceof ConfigError ? error.message : "body: not valid JSON" });
      return undefined;
    }
  }

  /** True, with a 403 sent, when the fault API is off. */
  function faultApiOff(res: ServerResponse): boolean {
    if (settings.faultApi) return false;
    sendJson(res, 403, { error: "the fault API is off: start the app with APP_ALLOW_FAULT_API=1" });
    return true;
  }

  async function handleFaultApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!methodAllowed(req, res, ["GET", "POST", "DELETE"])) return;
    if (faultApiOff(res)) return;
    if (req.method === "DELETE") {
      setFaults({}, FAULT_NAMES, performance.now());
      logEvent("faults-changed", { by: "fault API", faults });
    } else if (req.method === "POST") {
      const patch = await readJsonBody(req, res, (json) => faultPatchFromJson(json, "body"));
      if (patch === undefined) return;
      // Timed faults set live count from now, not from the start of the process.
      setFaults(applyPatch(faults, patch), Object.keys(patch) as FaultName[], performance.now());
      logEvent("faults-changed", { by: "fault API", faults });
    }
    sendJson(res, 200, { faults });
  }

  /**
   * `/admin` and below: 401 without `Authorization`, 403 with a credential that is not
   * `Bearer <ADMIN_TOKEN>`, 200 with it — or 200 to anyone while the guard is disabled.
   */
  function handleAdmin(req: IncomingMessage, res: ServerResponse): void {
    if (!methodAllowed(req, res, ["GET", "HEAD"])) return;
    if (authDisabled) {
      sendJson(res, 200, { admin: true, name: settings.name, guard: "disabled" });
      return;
    }
    const credential = req.headers.authorization;
    if (credential === undefined || credential.trim() === "") {
      res.setHeader("www-authenticate", 'Bearer realm="demo"');
      sendJson(res, 401, { error: "credentials required" });
      return;
    }
    if (settings.adminToken === undefined || credential !== `Bearer ${settings.adminToken}`) {
      sendJson(res, 403, { error: "not allowed" });
      return;
    }
    sendJson(res, 200, { admin: true, name: settings.name });
  }

  /** `GET /policy`: the policy hash; `POST /policy` (fault API on) changes it or the guard live. */
  async function handlePolicy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!methodAllowed(req, res, ["GET", "HEAD", "POST"])) return;
    if (req.method === "POST") {
      if (faultApiOff(res)) return;
      const change = await readJsonBody(req, res, policyChangeFromJson);
      if (change === undefined) return;
      if (change.hash !== undefined) policyHash = change.hash;
      if (change.authDisabled !== undefined) authDisabled = change.authDisabled;
      logEvent("policy-changed", { by: "fault API", policyHash, authDisabled });
    }
    sendJson(res, 200, { hash: policyHash, name: settings.name, version: settings.version, authDisabled });
  }

  /** `{hash?: string | null, authDisabled?: boolean}`; a null hash goes back to the one set at start. */
  function policyChangeFromJson(value: unknown): { hash?: string; authDisabled?: boolean } {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ConfigError(`body: expected an object, got ${describe(value)}`);
    }
    const change: { hash?: string; authDisabled?: boolean } = {};
    for (const [key, raw] of Object.entries(value)) {
      if (key === "hash")
        change.hash = raw === null ? settings.policyHash : parsePolicyHash(raw, "body.hash");
      else if (key === "authDisabled") {
        if (typeof raw !== "boolean") {
          throw new ConfigError(`body.authDisabled: expected true or false, got ${describe(raw)}`);
        }
        change.authDisabled = raw;
      } else throw new ConfigError(`body.${key}: unknown field (known: hash, authDisabled)`);
    }
    return change;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://app.invalid");
    if (url.pathname === "/admin" || url.pathname.startsWith("/admin/")) {
      handleAdmin(req, res);
      return;
    }
    switch (url.pathname) {
      case "/healthz":
        // Liveness: whoever can answer is alive. A hung app answers nothing at all.
        if (methodAllowed(req, res, ["GET", "HEAD"])) sendText(res, 200, "ok");
        return;
      case "/ready": {
        if (!methodAllowed(req, res, ["GET", "HEAD"])) return;
        const problem = readinessProblem();
        sendText(res, problem === null ? 200 : 503, problem === null ? "ready" : `not ready: ${problem}`);
        return;
      }
      case "/": {
        if (!methodAllowed(req, res, ["GET", "HEAD"])) return;
        if (!(await survivesTrafficFaults(res))) return;
        if (!(await slots.work(res))) return;
        if (!res.destroyed) slots.countServed();
        sendJson(res, 200, {
          name: settings.name,
          version: settings.version,
          greeting: settings.greeting,
          pid: process.pid,
          uptimeMs: Math.round(performance.now()),
          inFlight: inFlight - 1, // requests other than this one
          draining,
        });
        return;
      }
      case "/work": {
        if (!methodAllowed(req, res, ["GET", "HEAD"])) return;
        const msText = url.searchParams.get("ms");
        const ms = msText === null || msText === "" ? 0 : Number(msText);
        if (!Number.isInteger(ms) || ms < 0 || ms > MAX_WORK_MS) {
          sendJson(res, 400, {
            error: `ms: expected whole milliseconds from 0 to ${MAX_WORK_MS}, got ${describe(msText)}`,
          });
          return;
        }
        if (!(await survivesTrafficFaults(res))) return;
        if (ms > 0) await delay(ms);
        sendJson(res, 200, { name: settings.name, workedMs: ms });
        return;
      }
      case "/stats":
        // Like the probes: answered at once, never behind the work queue.
        if (methodAllowed(req, res, ["GET", "HEAD"])) sendJson(res, 200, slots.stats());
        return;
      case "/fault":
        await handleFaultApi(req, res);
        return;
      case "/policy":
        await handlePolicy(req, res);
        return;
      default:
        sendJson(res, 404, { error: `not found: ${url.pathname}` });
    }
  }

  const server = createServer((req, res) => {
    inFlight++;
    res.once("close", () => inFlight--);
    route(req, res).catch((error: unknown) => {
      process.stderr.write(
        `unexpected error on ${req.method} ${req.url}: ${(error as Error).stack ?? error}\n`,
      );
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, { error: "internal error" });
    });
  });

  // --- shutdown ---

  let exiting = false;
  function exitAfterDrain(reason: string, abandoned: number): void {
    if (exiting) return;
    exiting = true;
    logEvent("stopped", { reason, abandoned });
    process.exit(0);
  }

  function drainAndExit(signal: NodeJS.Signals): void {
    if (draining) {
      logEvent("signal-ignored", { signal, reason: "already draining" });
      return;
    }
    draining = true;
    logEvent("draining", { signal, inFlight, drainDelayMs: settings.drainDelayMs });
    // Whatever is still in flight at the deadline is cut off: a stop must stay bounded.
    setTimeout(() => {
      const abandoned = inFlight;
      server.closeAllConnections();
      exitAfterDrain("deadline", abandoned);
    }, SHUTDOWN_DEADLINE_MS).unref();
    // The drain delay lets load balancers see readiness fail before the listener goes away.
    setTimeout(() => {
      logEvent("listener-closed", { inFlight });
      server.close(() => exitAfterDrain("drained", 0));
      server.closeIdleConnections();
    }, settings.drainDelayMs);
  }

  process.on("SIGTERM", drainAndExit);
  process.on("SIGINT", drainAndExit);

  // --- start ---

  logEvent("starting", {
    version: settings.version,
    node: process.version,
    faults: settings.faults,
    faultApi: settings.faultApi,
    workers: settings.workers,
    workMs: settings.workMs,
    authDisabled: settings.authDisabled,
    policyHash: settings.policyHash,
  });
  // Faults from the environment and config count from the start of the process.
  setFaults(settings.faults, FAULT_NAMES, 0);

  server.on("error", (error: NodeJS.ErrnoException) => {
    if (server.listening) {
      // e.g. EMFILE on accept: the listener survives it, and so does the app.
      logEvent("server-error", { code: error.code, message: error.message });
      return;
    }
    logEvent("listen-failed", { port: settings.port, code: error.code, message: error.message });
    process.exit(1);
  });
  server.listen({ host: "127.0.0.1", port: settings.port }, () => {
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : settings.port;
    logEvent("listening", { host: "127.0.0.1", port, starting: isStarting() });
  });
}

function main(): void {
  let settings: Settings | "help";
  try {
    settings = readSettings(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`demo app: ${error.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (settings === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  run(settings);
}

main();
