import { spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { checkLeaseSettings, type LeaseSettings } from "../../controller/leaderElection.ts";
import { runController } from "../../controller/runController.ts";
import { thisMachine } from "../../dataplane/haproxy/machineChecks.ts";
import { killProcessGroup } from "../../drivers/local/processGroup.ts";
import { HomeostatError } from "../../errors.ts";
import { isProcessAlive } from "../../lib/procStat.ts";
import { ADMIN_TOKEN_FILE, type AdminTokenFile } from "../../server/auth/bootstrap.ts";
import { tryDurationMs } from "../../spec/duration.ts";
import { formatSpecError, loadFleetFile } from "../../spec/index.ts";
import { isPostgresAddress } from "../../store/sql/postgresDatabase.ts";
import { apiPort, apiPortOption, type Parsed, parse, stateDirOption, stringOption } from "../args.ts";
import type { CliIo, Command } from "../command.ts";
import { duration } from "../format.ts";
import { writeControllerPointer } from "../tokenLookup.ts";
import { renderEvent } from "./events.ts";

export const upCommand: Command = {
  name: "up",
  summary: "run the controller for a fleet (Ctrl-C stops everything; --detach runs it in the background)",
  usage: `homeostat up FILE [--state-dir DIR] [--api-port N] [--bind ADDRESS --tls-cert FILE --tls-key FILE]
                        [--data-plane MODE] [--store postgres://…] [--lease-ttl DURATION]
                        [--detach] [--quiet] [--json]

Validates FILE (nothing starts if it has any error), takes ownership of the state directory,
adopts instances a previous controller left running, starts what is missing, and keeps the
fleet healthy until interrupted. Events are printed as they happen.
Ctrl-C (or SIGTERM, or \`homeostat down\`) stops every instance gracefully, then exits;
a second Ctrl-C kills the instances at once.
SIGQUIT (Ctrl-\\, or \`homeostat down --keep-fleet\`) stops the controller alone: instances and the
data plane keep running for the next \`homeostat up\` to adopt (how Homeostat is upgraded:
docs/operations.md#controller-lifecycle).
The API needs a token: on first start an admin token is written to DIR/admin-token (owner-only),
and the CLI finds it from any directory (docs/api.md#authentication).

Options:
  --state-dir DIR  where state, logs and the database live (default: .homeostat/<FILE's name>/
                   beside FILE, e.g. .homeostat/fleet/ for fleet.yaml; one per fleet: a state
                   directory refuses another fleet file)
  --detach         run the controller in the background: returns once its API answers (or fails
                   with its error, leaving nothing running); its pid is in DIR/controller.pid,
                   its output in DIR/controller.out; \`homeostat down\` stops it
  --api-port N     port of the local API on 127.0.0.1 (default 7070, or $HOMEOSTAT_API_PORT)
  --bind ADDRESS   the API's listening address (default 127.0.0.1); any address but loopback
                   needs --tls-cert and --tls-key, and nothing starts without them
  --tls-cert FILE  serve the API over HTTPS with this certificate (PEM)
  --tls-key FILE   and this private key (PEM)
  --data-plane MODE
                   process (default): the service ports are served by a data-plane process of
                   its own, which keeps serving if the controller crashes or restarts;
                   in-process: inside the controller (its crash stops traffic; for comparison)
  --data-plane-workers N|auto
                   data-plane processes sharing every service port (auto = one per CPU core;
                   default: the fleet file's dataPlane.workers, else 1): docs/data-plane.md#workers
  --store URL      keep the state in PostgreSQL (postgres://USER@HOST:PORT/DB[?schema=NAME]; default
                   $HOMEOSTAT_STORE, else the state directory's SQLite file) so that several
                   controllers can run the fleet: one leads, the others follow (forwarding their
                   API to it) and take over within the lease TTL if it dies. Every order carries
                   the leader's fencing token: docs/operations.md#several-controllers
  --lease-ttl DURATION
                   the leader's lease on a PostgreSQL store (default 5s; renewed every TTL/5,
                   and a leader stops acting TTL/5 before its lease could have run out)
  --quiet          print only the banner and errors, not every event
  --json           print events as JSON Lines instead of text`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "up",
      argv,
      {
        "state-dir": { type: "string" },
        detach: { type: "boolean" },
        "data-plane": { type: "string" },
        "data-plane-workers": { type: "string" },
        quiet: { type: "boolean" },
        json: { type: "boolean" },
        bind: { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        store: { type: "string" },
        "lease-ttl": { type: "string" },
        ...apiPortOption,
      },
      1,
    );
    const file = positionals[0];
    if (file === undefined)
      throw new HomeostatError("HS_USAGE", "up: missing FILE (see `homeostat up --help`)");
    const port = apiPort(values);
    const listen = listenOptions(values);
    const dataPlaneMode = stringOption(values, "data-plane") ?? "process";
    const workersOption = stringOption(values, "data-plane-workers");
    if (workersOption !== undefined && workersOption !== "auto") {
      const n = Number(workersOption);
      if (!Number.isInteger(n) || n < 1 || n > 64) {
        throw new HomeostatError(
          "HS_USAGE",
          `up: --data-plane-workers must be auto or a whole number from 1 to 64, not ${JSON.stringify(workersOption)}`,
        );
      }
    }
    if (dataPlaneMode !== "process" && dataPlaneMode !== "in-process") {
      throw new HomeostatError(
        "HS_USAGE",
        `up: --data-plane must be process or in-process, not ${JSON.stringify(dataPlaneMode)}`,
      );
    }
    const loaded = await loadFleetFile(file, thisMachine);
    if (!loaded.ok) {
      for (const error of loaded.errors) io.err(formatSpecError(error));
      io.err(`homeostat: ${loaded.errors.length} error(s) in ${file}; nothing was started`);
      return 1;
    }
    const fleet = loaded.fleet;
    // The command line wins over the fleet file's `dataPlane.workers`.
    const workersWanted =
      workersOption === undefined
        ? fleet.dataPlane.workers
        : workersOption === "auto"
          ? "auto"
          : Number(workersOption);
    const dataPlaneWorkers = workersWanted === "auto" ? availableParallelism() : workersWanted;
    if (dataPlaneWorkers > 1 && dataPlaneMode === "in-process") {
      throw new HomeostatError("HS_USAGE", "up: several data-plane workers need --data-plane process");
    }
    const onHaproxy = fleet.services.filter((s) => s.port !== undefined && s.traffic.engine === "haproxy");
    if (onHaproxy.length > 0 && dataPlaneMode === "in-process") {
      // The managed HAProxy is the data-plane process's to run, adopt and hand over.
      throw new HomeostatError(
        "HS_USAGE",
        `up: ${onHaproxy.map((s) => s.name).join(", ")} use the haproxy engine, which needs --data-plane process (the default)`,
      );
    }
    const storeUrl = stringOption(values, "store") ?? (process.env.HOMEOSTAT_STORE || undefined);
    if (storeUrl !== undefined && !isPostgresAddress(storeUrl)) {
      throw new HomeostatError(
        "HS_USAGE",
        `up: --store must be a postgres:// address (the SQLite store is the state directory's own file), not ${JSON.stringify(storeUrl.replace(/:[^:@/]*@/, ":***@"))}`,
      );
    }
    const leaseTtl = stringOption(values, "lease-ttl");
    const lease = leaseTtl === undefined ? undefined : leaseSettings(leaseTtl);
    if (lease !== undefined && storeUrl === undefined) {
      throw new HomeostatError(
        "HS_USAGE",
        "up: --lease-ttl needs --store postgres://… (a SQLite store has one controller)",
      );
    }
    const stateDir = stateDirOption(values, file)!;
    if (values.detach === true) return await runDetached(argv, stateDir, io);
    const startedAt = Date.now();
    let keptFleet = false;
    let announcedReady = false;
    let exitCode = 0;
    let resolveDone: (code: number) => void = () => {};
    const done = new Promise<number>((r) => {
      resolveDone = r;
    });

    const total = fleet.services.reduce((n, s) => n + s.replicas, 0);
    const printBanner = (url: string, adminToken: AdminTokenFile, pointer: string) => {
      const shown = relative(process.cwd(), stateDir) || ".";
      if (values.json !== true) {
        io.out(
          [
            `homeostat: fleet "${fleet.name}" — ${fleet.services.length} service(s), ${total} instance(s)`,
            `  API     ${url}  (status: npx homeostat status${port === 7070 ? "" : ` --api-port ${port}`})`,
            `  board   ${url}/  (the dashboard: sign in with the admin token below)`,
            `  token   ${tokenLine(adminToken, relative(process.cwd(), adminToken.file))}`,
            `          the CLI finds it from any directory (pointer: ${pointer})`,
            `  state   ${shown}/state.db   logs ${shown}/logs/`,
            ...fleet.services
              .filter((s) => s.port !== undefined)
              .map((s) => `  traffic ${s.name} → http://127.0.0.1:${s.port}`),
            ...(isLegacyStateDir(stateDir, file)
              ? [
                  `  note    ${shown}/ is the shared state directory of earlier versions; it keeps working for this fleet (docs/operations.md#one-state-directory-per-fleet)`,
                ]
              : []),
            "  Ctrl-C stops every instance and exits; `homeostat down --keep-fleet` (or SIGQUIT) stops the controller alone.",
          ].join("\n"),
        );
      }
    };
    let following: string | null = null;
    const running = await runController({
      fleet,
      stateDir,
      ...(storeUrl === undefined ? {} : { store: storeUrl }),
      ...(lease === undefined ? {} : { lease }),
      onFollowing: (current, error) => {
        const line =
          current === null
            ? `homeostat: the store does not answer (${error instanceof Error ? error.message : String(error)}); retrying`
            : `homeostat: following — controller ${current.holder} leads (fencing token ${current.token}${current.apiUrl ? `, API ${current.apiUrl}` : ""}); this one takes over if its lease runs out. API requests on port ${port} go to it`;
        if (line !== following && values.json !== true) io.err(line);
        if (following === null && current !== null) {
          // The CLI finds a follower's port like a leader's: its requests are forwarded to the leader.
          const scheme = listen.tls === undefined ? "http" : "https";
          const host = listen.bind.includes(":") ? `[${listen.bind}]` : listen.bind;
          writeControllerPointer({
            apiPort: port,
            url: clientUrl(`${scheme}://${host}:${port}`, listen.bind, port),
            stateDir,
            tokenFile: join(stateDir, ADMIN_TOKEN_FILE),
            ...(listen.tlsCertFile === undefined ? {} : { caFile: listen.tlsCertFile }),
            pid: process.pid,
            writtenAt: Date.now(),
          });
        }
        following = line;
      },
      onLeadershipLost: (why) => {
        io.err(
          `homeostat: no longer the leader (${why}); stopped acting, the fleet keeps running under the new leader. Exiting: start it again to stand by`,
        );
        exitCode = 75;
        keptFleet = true;
        resolveDone(75);
      },
      apiPort: port,
      dataPlaneMode,
      dataPlaneWorkers,
      bind: listen.bind,
      ...(listen.tls === undefined ? {} : { tls: listen.tls }),
      onEvent: (event) => {
        if (values.json === true) io.out(JSON.stringify(event));
        else if (values.quiet !== true) io.out(renderEvent(event));
      },
      onShutdownRequested: ({ keepFleet }) => {
        keptFleet = keepFleet;
        resolveDone(exitCode);
      },
      onListening: (api) => {
        const pointer = writeControllerPointer({
          apiPort: port,
          url: clientUrl(api.url, listen.bind, port),
          stateDir,
          tokenFile: api.adminToken.file,
          ...(listen.tlsCertFile === undefined ? {} : { caFile: listen.tlsCertFile }),
          pid: process.pid,
          writtenAt: Date.now(),
        });
        printBanner(api.url, api.adminToken, pointer);
      },
    });

    // Everything started (API, data plane, adoption): `up --detach` returns once it sees this.
    writePidFile(stateDir);
    const readyWatch = setInterval(() => {
      if (announcedReady) return;
      const status = running.status();
      const ready = status.services.reduce((n, s) => n + s.ready, 0);
      if (ready === total) {
        announcedReady = true;
        clearInterval(readyWatch);
        if (values.json !== true) {
          io.out(
            `homeostat: all ${total} instances ready after ${duration(Date.now() - startedAt)} — try \`npx homeostat status\``,
          );
        }
      }
    }, 200);
    readyWatch.unref();

    let interrupts = 0;
    let quitting = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (quitting) {
        io.err(`homeostat: ${signal}: the controller is already stopping alone (the fleet keeps running)`);
        return;
      }
      interrupts++;
      if (interrupts === 1) {
        io.err(`homeostat: ${signal}: stopping every instance (press Ctrl-C again to kill them at once)`);
        void running.shutdown().then(
          () => resolveDone(exitCode),
          (error: unknown) => {
            io.err(`homeostat: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
            exitCode = 2;
            resolveDone(2);
          },
        );
        return;
      }
      io.err("homeostat: killing every instance now");
      for (const record of running.store.listInstances()) {
        // Only our own process: a pid is checked against its recorded start time before any signal.
        if (record.pid !== null && isProcessAlive(record.pid, record.startTime))
          killProcessGroup(record.pid, "SIGKILL");
      }
    };
    // SIGQUIT stops the controller alone (SIGTERM/SIGINT/SIGHUP stop everything): a signal that
    // means "quit, leave the work running" (as for nginx), which Node leaves free (SIGUSR1 is its
    // inspector's), and which a terminal sends with Ctrl-\ to this process only (instances and
    // the data plane lead process groups of their own).
    const onQuit = () => {
      if (interrupts > 0 || quitting) return;
      quitting = true;
      io.err("homeostat: SIGQUIT: stopping the controller alone; instances and the data plane keep running");
      void running.detach().then(
        () => {
          keptFleet = true;
          resolveDone(exitCode);
        },
        (error: unknown) => {
          io.err(`homeostat: stop failed: ${error instanceof Error ? error.message : String(error)}`);
          resolveDone(2);
        },
      );
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onSignal);
    process.on("SIGQUIT", onQuit);
    const code = await done;
    clearInterval(readyWatch);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
    process.off("SIGQUIT", onQuit);
    removePidFile(stateDir);
    if (values.json !== true) {
      io.out(
        keptFleet
          ? "homeostat: controller stopped; the instances and the data plane keep running (the next `homeostat up` adopts them)"
          : "homeostat: stopped",
      );
    }
    return code;
  },
};

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/** True for an address only this machine can reach. */
export function isLoopback(address: string): boolean {
  return LOOPBACK.test(address);
}

/**
 * `--bind`, `--tls-cert` and `--tls-key`, checked before anything starts: a non-loopback address
 * without a certificate and key is refused (the token would cross the network in clear).
 */
function listenOptions(values: Parsed["values"]): {
  bind: string;
  tls?: { cert: Buffer; key: Buffer };
  tlsCertFile?: string;
} {
  const bind = stringOption(values, "bind") ?? "127.0.0.1";
  if (bind !== "localhost" && isIP(bind) === 0) {
    throw new HomeostatError(
      "HS_USAGE",
      `up: --bind expects an IP address (127.0.0.1, 0.0.0.0, ::1, …), not ${JSON.stringify(bind)}`,
    );
  }
  const certFile = stringOption(values, "tls-cert");
  const keyFile = stringOption(values, "tls-key");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new HomeostatError(
      "HS_USAGE",
      "up: --tls-cert and --tls-key go together (a certificate and its private key)",
    );
  }
  if (certFile === undefined || keyFile === undefined) {
    if (!isLoopback(bind)) {
      throw new HomeostatError(
        "HS_USAGE",
        `up: --bind ${bind} would expose the API beyond this machine over plain HTTP (tokens in clear): give --tls-cert FILE and --tls-key FILE, or bind to 127.0.0.1. Nothing was started`,
      );
    }
    return { bind };
  }
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new HomeostatError(
        "HS_USAGE",
        `up: cannot read the TLS ${what} ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}). Nothing was started`,
      );
    }
  };
  return {
    bind,
    tls: { cert: read(certFile, "certificate"), key: read(keyFile, "key") },
    tlsCertFile: resolve(certFile),
  };
}

/** The URL a client on this machine uses: a wildcard bind is reached on loopback. */
function clientUrl(url: string, bind: string, port: number): string {
  if (bind !== "0.0.0.0" && bind !== "::") return url;
  return `${url.startsWith("https:") ? "https" : "http"}://127.0.0.1:${port}`;
}

/** The banner's line about the admin token (its path, never its value). */
function tokenLine(adminToken: AdminTokenFile, shown: string): string {
  switch (adminToken.state) {
    case "created":
      return `admin token created in ${shown} (owner-only; keep it secret)`;
    case "replaced":
      return `${shown} was missing: a new admin token was written there (the old one revoked)`;
    case "kept":
      return `admin token in ${shown}`;
    case "unusable":
      return `${shown} holds no live admin token (revoked or missing); use a token of your own (--token or $HOMEOSTAT_TOKEN)`;
  }
}

/** `<stateDir>/controller.pid`: the running controller's pid, while it runs. */
export const PID_FILE = "controller.pid";
/** `<stateDir>/controller.out`: what a controller started with `--detach` prints. */
export const DETACHED_OUTPUT = "controller.out";

/** Written once the API listens; `up --detach` waits for it. */
function writePidFile(stateDir: string): void {
  writeFileSync(join(stateDir, PID_FILE), `${process.pid}\n`, { mode: 0o600 });
}

/** Removed on the way out, unless another controller has written its own since. */
function removePidFile(stateDir: string): void {
  const file = join(stateDir, PID_FILE);
  try {
    if (readFileSync(file, "utf8").trim() === String(process.pid)) unlinkSync(file);
  } catch {
    // gone already
  }
}

/** True when `stateDir` is the folder-wide `.homeostat/` of earlier versions (see defaultStateDir). */
function isLegacyStateDir(stateDir: string, file: string): boolean {
  return stateDir === join(dirname(resolve(file)), ".homeostat");
}

/** How long `up --detach` waits for the controller's API before giving up on it. */
const DETACH_START_TIMEOUT_MS = 60_000;

/**
 * `up --detach`: the same `up` in a process of its own (a session leader, no terminal), its
 * output appended to `<stateDir>/controller.out`. Returns 0 once it has written its pid file (its
 * API listens); if it exits first, prints what it said and returns its exit code — it has
 * started nothing then (runController undoes everything on a failed start).
 */
async function runDetached(argv: string[], stateDir: string, io: CliIo): Promise<number> {
  mkdirSync(stateDir, { recursive: true });
  const outputFile = join(stateDir, DETACHED_OUTPUT);
  const from = existsSync(outputFile) ? statSync(outputFile).size : 0;
  const out = openSync(outputFile, "a", 0o600);
  const args = argv.filter((a) => a !== "--detach");
  if (!args.some((a) => a === "--state-dir" || a.startsWith("--state-dir=")))
    args.push("--state-dir", stateDir);
  const script = process.argv[1];
  if (script === undefined)
    throw new HomeostatError("HS_INTERNAL", "up --detach: cannot tell how homeostat was run");
  const child = spawn(process.execPath, [...process.execArgv, script, "up", ...args], {
    detached: true,
    stdio: ["ignore", out, out],
    env: process.env,
  });
  closeSync(out);
  const exited = new Promise<number>((r) =>
    child.once("exit", (code, signal) => r(code ?? (signal ? 2 : 1))),
  );
  const said = (): string => {
    try {
      return readFileSync(outputFile).subarray(from).toString("utf8").trimEnd();
    } catch {
      return "";
    }
  };
  const deadline = Date.now() + DETACH_START_TIMEOUT_MS;
  let exitCode: number | null = null;
  void exited.then((code) => {
    exitCode = code;
  });
  while (exitCode === null) {
    const pid = readPid(join(stateDir, PID_FILE));
    if (pid !== child.pid && said().includes("homeostat: following —")) {
      // A follower on a shared PostgreSQL store: it stands by (the leader wrote the pid file).
      child.unref();
      io.out(said());
      io.out(
        `homeostat: the controller stands by in the background as a follower (pid ${child.pid}); output in ${outputFile}`,
      );
      return 0;
    }
    if (pid === child.pid) {
      child.unref();
      const text = said();
      if (text !== "") io.out(text);
      io.out(
        `homeostat: the controller runs in the background (pid ${child.pid}); output in ${outputFile}; stop it with \`homeostat down\` (or \`homeostat down --keep-fleet\` to leave the fleet running)`,
      );
      return 0;
    }
    if (Date.now() > deadline) {
      // Not listening after a minute: stop it (gracefully: it may have started instances).
      child.kill("SIGTERM");
      const code = await exited;
      const text = said();
      if (text !== "") io.err(text);
      io.err(
        `homeostat: the controller did not answer within ${DETACH_START_TIMEOUT_MS / 1000}s; stopped it`,
      );
      return code === 0 ? 2 : code;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const text = said();
  if (text !== "") io.err(text);
  io.err(`homeostat: the controller exited with code ${exitCode} before its API answered; nothing runs`);
  return exitCode === 0 ? 2 : exitCode;
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** `--lease-ttl`: renewals every fifth of it, and a leader stops acting a fifth before its end. */
function leaseSettings(text: string): LeaseSettings {
  const ttlMs = tryDurationMs(text);
  if (ttlMs === undefined) {
    throw new HomeostatError(
      "HS_USAGE",
      `up: --lease-ttl must be a duration such as 5s or 1500ms, not ${JSON.stringify(text)}`,
    );
  }
  const fifth = Math.round(ttlMs / 5);
  const settings = { ttlMs, renewEveryMs: fifth, marginMs: fifth };
  checkLeaseSettings(settings);
  return settings;
}
