import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { ExitInfo, InstanceLaunch, RuntimeHandle } from "../../src/drivers/driver.ts";
import { LocalProcessDriver } from "../../src/drivers/local/localProcessDriver.ts";
import { killProcessGroup } from "../../src/drivers/local/processGroup.ts";
import { HomeostatError } from "../../src/errors.ts";
import { isProcessAlive, processGroupOf, processStartTime, processState } from "../../src/lib/procStat.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { testLaunch } from "./fixtures/launch.ts";

const run = promisify(execFile);
const NODE = process.execPath;
const START_DETACHED = join(import.meta.dirname, "fixtures", "startDetached.ts");

let workDir: string;
let logDir: string;
/** Every process group a test created, killed in `after` whatever happened. */
const groups = new Set<number>();
const drivers: LocalProcessDriver[] = [];

before(() => {
  workDir = mkdtempSync(join(tmpdir(), "homeostat-driver-"));
  logDir = join(workDir, "logs");
});

after(async () => {
  for (const driver of drivers) await driver.stopAll(0).catch(() => {});
  for (const pgid of [...groups, ...groupsCarryingMarker()]) {
    try {
      killProcessGroup(pgid, "SIGKILL");
    } catch {
      // Best effort: the test itself reports what went wrong.
    }
  }
  rmSync(workDir, { recursive: true, force: true });
});

/**
 * Every instance started here inherits `MARKER=workDir`, so `after` finds it even when a test
 * failed before learning its pid (say, the separate controller timed out).
 */
const MARKER = "DRIVER_TEST_RUN_DIR";

function groupsCarryingMarker(): number[] {
  const tag = `${MARKER}=${workDir}\0`;
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, "latin1").includes(tag)) {
        const pgid = processGroupOf(pid);
        if (pgid !== null && pgid !== process.pid && pgid > 1) found.push(pgid);
      }
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

function newDriver(): { driver: LocalProcessDriver; exits: Array<{ instance: string; exit: ExitInfo }> } {
  const driver = new LocalProcessDriver({ logDir });
  drivers.push(driver);
  const exits: Array<{ instance: string; exit: ExitInfo }> = [];
  driver.onExit((instance, exit) => exits.push({ instance, exit }));
  return { driver, exits };
}

let counter = 0;
function launch(command: string, args: string[], overrides: Partial<InstanceLaunch> = {}): InstanceLaunch {
  counter += 1;
  return {
    ...testLaunch({
      instance: `svc-${counter}`,
      slot: counter,
      port: 41000 + counter,
      command,
      args,
      env: { [MARKER]: workDir },
      cwd: workDir,
    }),
    ...overrides,
  };
}

async function startTracked(driver: LocalProcessDriver, spec: InstanceLaunch): Promise<RuntimeHandle> {
  const handle = await driver.start(spec);
  groups.add(handle.pid);
  return handle;
}

function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Wait for `pattern` in the log and return its first capture group (or the whole match). */
async function waitForLog(path: string, pattern: RegExp): Promise<string> {
  return waitFor(
    () => {
      const match = pattern.exec(readLog(path));
      return match ? (match[1] ?? match[0]) : null;
    },
    { what: `${pattern} in ${path}` },
  );
}

/** Run the fake crashing controller: it starts `command args` detached and exits. */
async function startInSeparateController(instance: string, command: string, args: string[]) {
  const { stdout } = await run(NODE, [START_DETACHED, logDir, instance, command, ...args], {
    timeout: 30_000,
    env: { ...process.env, [MARKER]: workDir },
  });
  const handle = JSON.parse(stdout) as RuntimeHandle;
  groups.add(handle.pid);
  return handle;
}

describe("LocalProcessDriver.start", () => {
  it("substitutes placeholders, sets the environment and appends output to the instance log", async () => {
    const { driver, exits } = newDriver();
    const script = `console.log("REPORT " + JSON.stringify({
      argv: process.argv.slice(1),
      cwd: process.cwd(),
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k === "PORT" || k === "PATH" || k === "GREETING" || k.startsWith("HOMEOSTAT_"))),
    })); console.error("to stderr");`;
    const spec = launch(
      NODE,
      ["-e", script, "--", "--port={port}", "{instance}", "{service}", "{zone}", "{host}", "{other}"],
      {
        instance: "web-3",
        service: "web",
        port: 41999,
        placement: { zone: "zone-b", host: "host-b" },
      },
    );
    spec.release = {
      ...spec.release,
      version: "v7",
      env: { ...spec.release.env, GREETING: "hello", PORT: "1", HOMEOSTAT_INSTANCE: "liar" },
      config: { greeting: "hi", n: 2 },
    };

    const handle = await startTracked(driver, spec);
    assert.equal(handle.logPath, join(logDir, "web-3.log"));
    assert.match(handle.startTime, /^\d+$/);

    await waitFor(() => exits.length === 1, { what: "exit of web-3" });
    assert.deepEqual(exits[0]?.exit.code, 0);
    const log = readLog(handle.logPath);
    const headerLine = log.split("\n")[0] ?? "";
    assert.match(headerLine, /^--- \d{4}-\d\d-\d\dT[\d:.]+Z start web-3 release v7 pid (\d+) ---$/);
    assert.ok(headerLine.endsWith(`pid ${handle.pid} ---`));
    const report = JSON.parse(/^REPORT (.*)$/m.exec(log)?.[1] ?? "null");
    assert.deepEqual(report.argv, ["--port=41999", "web-3", "web", "zone-b", "host-b", "{other}"]);
    assert.equal(report.cwd, workDir);
    assert.deepEqual(report.env, {
      // The controller's own Node comes first, so `command: node` means Homeostat's Node.
      PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
      GREETING: "hello",
      PORT: "41999",
      HOMEOSTAT_INSTANCE: "web-3",
      HOMEOSTAT_SERVICE: "web",
      HOMEOSTAT_RELEASE: "v7",
      HOMEOSTAT_ZONE: "zone-b",
      HOMEOSTAT_HOST: "host-b",
      HOMEOSTAT_CONFIG: JSON.stringify({ greeting: "hi", n: 2 }),
    });
    assert.match(log, /^to stderr$/m);
    assert.match(log, /exit web-3 pid \d+ code 0 signal null ---/);
  });

  it("reports a crash through onExit, exactly once, and keeps the exit in status until the next start", async () => {
    const { driver, exits } = newDriver();
    const spec = launch(NODE, ["-e", "setTimeout(() => process.exit(3), 100)"]);
    const first = await startTracked(driver, spec);
    assert.equal(driver.status(spec.instance).state, "running");

    await waitFor(() => exits.length > 0, { what: "crash reported" });
    assert.equal(exits[0]?.instance, spec.instance);
    assert.equal(exits[0]?.exit.code, 3);
    assert.equal(exits[0]?.exit.signal, null);
    const status = driver.status(spec.instance);
    assert.equal(status.state, "exited");
    assert.equal(status.state === "exited" && status.exit.code, 3);
    assert.equal(await driver.stop(spec.instance, 1000), null, "stopping an exited instance is a no-op");

    const second = await startTracked(driver, {
      ...spec,
      release: { ...spec.release, args: ["-e", "setInterval(() => {}, 1000)"] },
    });
    assert.notEqual(second.pid, first.pid);
    assert.equal(driver.status(spec.instance).state, "running");
    await driver.stop(spec.instance, 5000);
    assert.equal(exits.length, 2, "one exit per run");
    const lines = readLog(first.logPath).match(/^--- .* start /gm) ?? [];
    assert.equal(lines.length, 2, "the log is appended to, not truncated");
  });

  it("rejects a second start of a running instance", async () => {
    const { driver } = newDriver();
    const spec = launch("sleep", ["60"]);
    await startTracked(driver, spec);
    await assert.rejects(driver.start(spec), (error: unknown) => {
      assert.ok(error instanceof HomeostatError);
      assert.equal(error.code, "HS_DRIVER_START_FAILED");
      assert.match(error.message, /already running/);
      return true;
    });
    await driver.stop(spec.instance, 5000);
  });

  it("rejects an unknown command with HS_DRIVER_START_FAILED naming the command and cwd", async () => {
    const { driver, exits } = newDriver();
    const spec = launch("homeostat-no-such-command", ["x"]);
    await assert.rejects(driver.start(spec), (error: unknown) => {
      assert.ok(error instanceof HomeostatError);
      assert.equal(error.code, "HS_DRIVER_START_FAILED");
      assert.match(error.message, /homeostat-no-such-command/);
      assert.ok(error.message.includes(workDir), error.message);
      assert.match(error.message, /command not found/);
      return true;
    });
    assert.deepEqual(driver.status(spec.instance), { state: "missing" });
    assert.match(readLog(join(logDir, `${spec.instance}.log`)), /failed: command not found/);

    const noCwd = launch("sleep", ["1"]);
    noCwd.release = { ...noCwd.release, cwd: join(workDir, "does-not-exist") };
    await assert.rejects(driver.start(noCwd), /working directory does not exist/);
    assert.equal(exits.length, 0);
  });
});

describe("LocalProcessDriver.stop", () => {
  it("kills the whole process group, grandchildren included", async () => {
    const { driver, exits } = newDriver();
    const spec = launch("sh", ["-c", 'sleep 60 & echo "grandchild $!"; wait']);
    const handle = await startTracked(driver, spec);
    const grandchild = Number(await waitForLog(handle.logPath, /^grandchild (\d+)$/m));
    const grandchildStart = processStartTime(grandchild);
    assert.ok(isProcessAlive(grandchild, grandchildStart));

    const exit = await driver.stop(spec.instance, 5000);
    assert.equal(exit?.signal, "SIGTERM");
    assert.equal(isProcessAlive(grandchild, grandchildStart), false, "grandchild is gone");
    assert.equal(isProcessAlive(handle.pid, handle.startTime), false);
    assert.equal(exits.length, 1);
    assert.equal(await driver.stop(spec.instance, 5000), null, "stop is idempotent");
    assert.equal(exits.length, 1, "onExit fires once per run");
  });

  it("waits for a grandchild that outlives its leader, SIGKILLing it after the grace period", async () => {
    const { driver } = newDriver();
    const stubborn = `process.on("SIGTERM", () => {}); console.log("grandchild " + process.pid); setInterval(() => {}, 1000);`;
    const spec = launch("sh", ["-c", `"${NODE}" -e '${stubborn}' & wait`]);
    const handle = await startTracked(driver, spec);
    const grandchild = Number(await waitForLog(handle.logPath, /^grandchild (\d+)$/m));
    const grandchildStart = processStartTime(grandchild);

    const graceMs = 1000;
    const began = performance.now();
    await driver.stop(spec.instance, graceMs);
    const elapsed = performance.now() - began;
    assert.ok(elapsed >= graceMs, `stop resolved after ${elapsed} ms, before the grace period`);
    assert.equal(isProcessAlive(grandchild, grandchildStart), false);
  });

  it("SIGKILLs a child that ignores SIGTERM once the grace period is over", async () => {
    const { driver } = newDriver();
    const script = `process.on("SIGTERM", () => console.log("ignoring SIGTERM")); console.log("ready"); setInterval(() => {}, 1000);`;
    const spec = launch(NODE, ["-e", script]);
    const handle = await startTracked(driver, spec);
    await waitForLog(handle.logPath, /^ready$/m);

    const graceMs = 1500;
    const began = performance.now();
    const exit = await driver.stop(spec.instance, graceMs);
    const elapsed = performance.now() - began;
    assert.ok(elapsed >= graceMs, `stop took ${elapsed} ms, less than the grace period`);
    assert.equal(exit?.signal, "SIGKILL");
    assert.equal(exit?.code, null);
    assert.match(readLog(handle.logPath), /^ignoring SIGTERM$/m, "SIGTERM came first");
    const status = driver.status(spec.instance);
    assert.equal(status.state === "exited" && status.exit.signal, "SIGKILL");
  });

  it("stops a SIGSTOPped child promptly instead of waiting for SIGKILL", async () => {
    const { driver } = newDriver();
    const spec = launch("sleep", ["60"]);
    const handle = await startTracked(driver, spec);
    process.kill(handle.pid, "SIGSTOP");
    await waitFor(() => processState(handle.pid) === "T", { what: "child stopped" });

    const began = performance.now();
    const exit = await driver.stop(spec.instance, 30_000);
    const elapsed = performance.now() - began;
    assert.ok(elapsed < 15_000, `stop took ${elapsed} ms`);
    assert.equal(exit?.signal, "SIGTERM");
  });

  it("shares one stop between concurrent callers, and stopAll stops everything", async () => {
    const { driver, exits } = newDriver();
    const a = launch("sleep", ["60"]);
    const b = launch("sleep", ["60"]);
    await startTracked(driver, a);
    await startTracked(driver, b);

    const [first, second] = await Promise.all([driver.stop(a.instance, 5000), driver.stop(a.instance, 5000)]);
    assert.deepEqual(first, second);
    assert.equal(first?.signal, "SIGTERM");

    await driver.stopAll(5000);
    assert.equal(driver.status(b.instance).state, "exited");
    assert.deepEqual(exits.map((e) => e.instance).sort(), [a.instance, b.instance].sort());
    assert.equal(await driver.stop("never-started", 1000), null);
  });

  it("kills what a crashed leader left behind in its group", async () => {
    const { driver, exits } = newDriver();
    const spec = launch("sh", ["-c", 'sleep 60 & echo "grandchild $!"; exec sleep 2']);
    const handle = await startTracked(driver, spec);
    const grandchild = Number(await waitForLog(handle.logPath, /^grandchild (\d+)$/m));
    const grandchildStart = processStartTime(grandchild);
    assert.notEqual(grandchildStart, null);

    await waitFor(() => exits.length === 1, { what: "leader exit" });
    assert.equal(exits[0]?.exit.code, 0);
    await waitFor(() => !isProcessAlive(grandchild, grandchildStart), { what: "leftover killed" });
  });
});

describe("LocalProcessDriver.adopt", () => {
  it("adopts an instance left running by a controller that exited, then stops it", async () => {
    const handle = await startInSeparateController("adoptee-0", "sleep", ["60"]);
    assert.ok(isProcessAlive(handle.pid, handle.startTime), "the instance outlived its controller");
    assert.match(readLog(handle.logPath), /start adoptee-0 release v1 pid \d+/);

    const { driver, exits } = newDriver();
    assert.equal(await driver.adopt("adoptee-0", handle), "adopted");
    assert.deepEqual(driver.status("adoptee-0"), { state: "running", handle });
    assert.equal(await driver.adopt("adoptee-0", handle), "adopted", "adopting twice is harmless");

    const exit = await driver.stop("adoptee-0", 5000);
    assert.equal(exit?.code, null);
    assert.equal(exit?.signal, null);
    assert.equal(isProcessAlive(handle.pid, handle.startTime), false);
    assert.equal(driver.status("adoptee-0").state, "exited");
    assert.equal(exits.length, 1);
    assert.equal(exits[0]?.instance, "adoptee-0");
  });

  it("notices an adopted instance dying on its own by polling /proc", async () => {
    const handle = await startInSeparateController("adoptee-1", "sleep", ["60"]);
    const { driver, exits } = newDriver();
    assert.equal(await driver.adopt("adoptee-1", handle), "adopted");

    process.kill(handle.pid, "SIGKILL");
    await waitFor(() => exits.length === 1, { what: "adopted exit noticed" });
    assert.equal(exits[0]?.instance, "adoptee-1");
    assert.equal(exits[0]?.exit.code, null);
    assert.equal(driver.status("adoptee-1").state, "exited");
  });

  it("answers gone for a wrong start time and leaves the process that now owns the pid alone", async () => {
    const handle = await startInSeparateController("adoptee-2", "sleep", ["60"]);
    const { driver } = newDriver();
    assert.equal(await driver.adopt("adoptee-2", { ...handle, startTime: "1" }), "gone");
    assert.deepEqual(driver.status("adoptee-2"), { state: "missing" });
    assert.ok(isProcessAlive(handle.pid, handle.startTime), "a recycled pid is not ours to kill");
  });

  it("answers gone for a dead leader and kills what is left of its group", async () => {
    const handle = await startInSeparateController("adoptee-3", "sh", [
      "-c",
      'sleep 60 & echo "grandchild $!"; wait',
    ]);
    const grandchild = Number(await waitForLog(handle.logPath, /^grandchild (\d+)$/m));
    const grandchildStart = processStartTime(grandchild);
    process.kill(handle.pid, "SIGKILL");
    await waitFor(() => !isProcessAlive(handle.pid, handle.startTime), { what: "leader dead" });
    assert.ok(isProcessAlive(grandchild, grandchildStart), "the grandchild survived its leader");

    const { driver } = newDriver();
    assert.equal(await driver.adopt("adoptee-3", handle), "gone");
    assert.equal(isProcessAlive(grandchild, grandchildStart), false);
  });
});
