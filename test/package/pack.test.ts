/**
 * The npm package works without this repository (issue 13, item 9): `npm pack` builds the
 * JavaScript (prepack), the tarball installs into a project of its own, and the installed
 * `homeostat` — run by a Node new enough, not from a clone — writes a starter fleet (`init`),
 * validates it, runs it (`up`: instances, and the data plane as a process of its own started from
 * the package's dist/, restarted by plan from there too) and stops it (`down`). Installing needs
 * the npm registry for the package's dependencies: without it the test fails, it does not skip.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { freePort, freePortRange, REPO, sandbox } from "../helpers/e2e.ts";
import { type RunResult, run } from "../helpers/run.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { systemTool, withTestNode } from "./commands.ts";

interface Status {
  services: {
    name: string;
    ready: number;
    instances: { name: string; state: string; pid: number | null }[];
  }[];
  dataPlane?: { pid: number | null; connected: boolean };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function explain(what: string, result: RunResult): string {
  return `${what} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

test("the packed tarball installs into another project, and its homeostat runs init, validate, up and down", async (t) => {
  const npm = systemTool("npm");
  assert.ok(npm, "npm on PATH: the package is made and installed with it");
  const box = await sandbox("homeostat-pack-");
  const project = join(box.dir, "project");
  const env = { ...withTestNode(), HOMEOSTAT_CONFIG_DIR: box.configDir };
  const bin = join(project, "node_modules", ".bin", "homeostat");
  const homeostat = (args: string[]): Promise<RunResult> =>
    run(process.execPath, [bin, ...args], { cwd: project, env, timeoutMs: 30_000 });
  let controller: ChildProcess | null = null;
  let controllerExit: Promise<number | null> = Promise.resolve(null);
  t.after(async () => {
    if (controller !== null && controller.exitCode === null && controller.signalCode === null) {
      controller.kill("SIGKILL");
      await controllerExit;
      // The instances and the data plane outlive a killed controller: down stops what it recorded.
      await homeostat(["down", "app/fleet.yaml", "--api-port", String(box.apiPort)]).catch(() => undefined);
    }
    await box.cleanup();
  });

  // 1. Pack, as `npm pack` in the repository does: prepack compiles src/ into dist/.
  const packed = await run(npm, ["pack", "--pack-destination", box.dir], {
    cwd: REPO,
    env: withTestNode(),
    timeoutMs: 120_000,
  });
  assert.equal(packed.code, 0, explain("npm pack", packed));
  const tarballs = readdirSync(box.dir).filter((name) => name.endsWith(".tgz"));
  assert.equal(tarballs.length, 1, `one tarball in ${box.dir}: ${tarballs.join(", ")}`);

  // 2. Install the tarball into a project that has nothing of this repository.
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    `${JSON.stringify({ name: "try-homeostat", version: "1.0.0", private: true }, null, 2)}\n`,
  );
  const installed = await run(
    npm,
    ["install", join(box.dir, tarballs[0] ?? ""), "--no-audit", "--no-fund", "--prefer-offline"],
    { cwd: project, env: withTestNode(), timeoutMs: 120_000 },
  );
  assert.equal(installed.code, 0, explain("npm install", installed));
  const pkg = join(project, "node_modules", "homeostat");
  assert.ok(existsSync(join(pkg, "dist", "cli", "main.js")), "the package carries the compiled CLI");
  assert.ok(existsSync(join(pkg, "dist", "dataplane", "main.js")), "and the data plane's entry");
  assert.ok(existsSync(join(pkg, "ui", "dist", "index.html")), "and the dashboard");
  assert.ok(!existsSync(join(pkg, "src")), "but no TypeScript (Node does not strip types in node_modules)");
  assert.ok(!existsSync(join(pkg, "test")), "and no tests");

  const version = await homeostat(["--version"]);
  assert.equal(version.code, 0, explain("homeostat --version", version));
  const { version: ownVersion } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
    version: string;
  };
  assert.equal(version.stdout.trim(), `homeostat ${ownVersion}`, "the version is package.json's");

  // 3. init writes a starter fleet, and refuses to overwrite it.
  const init = await homeostat(["init", "app", "--name", "pack-test"]);
  assert.equal(init.code, 0, explain("homeostat init", init));
  assert.match(init.stdout, /wrote app\/fleet\.yaml/);
  assert.match(init.stdout, /homeostat validate app\/fleet\.yaml/);
  assert.match(init.stdout, /homeostat up app\/fleet\.yaml/);
  const again = await homeostat(["init", "app"]);
  assert.equal(again.code, 1, explain("a second homeostat init", again));
  assert.match(again.stderr, /already exists.*--force/);

  // Its ports, moved to free ones (the file's own are fixed: 18080 and 18081..).
  const fleetFile = join(project, "app", "fleet.yaml");
  const front = await freePort();
  const base = await freePortRange(4);
  const text = readFileSync(fleetFile, "utf8");
  const moved = text
    .replace(/^ {4}basePort: \d+$/m, `    basePort: ${base}`)
    .replace(/^ {4}port: \d+$/m, `    port: ${front}`);
  assert.notEqual(moved, text);
  assert.match(moved, new RegExp(`basePort: ${base}\\n[\\s\\S]*port: ${front}\\n`));
  writeFileSync(fleetFile, moved);

  // 4. validate.
  const validated = await homeostat(["validate", "app/fleet.yaml"]);
  assert.equal(validated.code, 0, explain("homeostat validate", validated));
  assert.equal(validated.stdout.trim(), "ok");

  // 5. up: both instances ready, the data plane (its own process, from dist/) serving the front port.
  let output = "";
  const child = spawn(process.execPath, [bin, "up", "app/fleet.yaml", "--api-port", String(box.apiPort)], {
    cwd: project,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  controller = child;
  controllerExit = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  child.stdout.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const status = await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`homeostat up exited ${child.exitCode}:\n${output}`);
      const result = await homeostat(["status", "--json", "--api-port", String(box.apiPort)]);
      if (result.code !== 0) return null;
      const doc = JSON.parse(result.stdout) as Status;
      const web = doc.services.find((s) => s.name === "web");
      return web?.ready === 2 && doc.dataPlane?.connected === true ? doc : null;
    },
    { timeoutMs: 40_000, intervalMs: 250, what: "2 ready instances and a connected data plane" },
  );
  const dataPlanePid = status.dataPlane?.pid;
  assert.ok(typeof dataPlanePid === "number", "the data plane is a process of its own");
  const dataPlaneArgv = readFileSync(`/proc/${dataPlanePid}/cmdline`, "utf8").split("\0");
  assert.ok(
    dataPlaneArgv.includes(join(pkg, "dist", "dataplane", "main.js")),
    `the data plane runs the package's compiled entry: ${dataPlaneArgv.join(" ")}`,
  );
  const answer = await waitFor(
    async () => {
      const response = await fetch(`http://127.0.0.1:${front}/`, { signal: AbortSignal.timeout(2_000) });
      return response.ok ? await response.text() : null;
    },
    { timeoutMs: 10_000, what: "an answer through the front port" },
  );
  assert.match(answer, /^hello from web-[01]\n$/);

  // A planned data-plane restart: the running data plane starts its successor itself, from the
  // package's dist/ too (how a new Homeostat version takes over the traffic).
  const restarted = await homeostat(["dataplane", "restart", "--api-port", String(box.apiPort)]);
  assert.equal(restarted.code, 0, explain("homeostat dataplane restart", restarted));
  const successor = await waitFor(
    async () => {
      const result = await homeostat(["status", "--json", "--api-port", String(box.apiPort)]);
      const doc = JSON.parse(result.stdout) as Status;
      const pid = doc.dataPlane?.pid;
      return typeof pid === "number" && pid !== dataPlanePid && doc.dataPlane?.connected === true
        ? pid
        : null;
    },
    { timeoutMs: 20_000, intervalMs: 250, what: "the successor data plane connected" },
  );
  const successorArgv = readFileSync(`/proc/${successor}/cmdline`, "utf8").split("\0");
  assert.ok(
    successorArgv.includes(join(pkg, "dist", "dataplane", "main.js")),
    `the successor runs the package's compiled entry: ${successorArgv.join(" ")}`,
  );

  // 6. down stops the instances and the controller.
  const instancePids = (status.services[0]?.instances ?? []).map((i) => i.pid).filter((p) => p !== null);
  assert.equal(instancePids.length, 2);
  const down = await homeostat(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, explain("homeostat down", down));
  assert.equal(await controllerExit, 0, output);
  for (const pid of instancePids) assert.ok(!alive(pid), `instance pid ${pid} stopped`);
});
