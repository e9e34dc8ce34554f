import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { InstanceLaunch } from "../../src/drivers/driver.ts";
import { LocalProcessDriver } from "../../src/drivers/local/localProcessDriver.ts";
import {
  commandLine,
  decodeProcAddress,
  findPortOwners,
  listeningInodes,
  type ProcReader,
  socketInode,
} from "../../src/drivers/local/portOwner.ts";
import { HomeostatError } from "../../src/errors.ts";
import { describeHolders, judgePortIdentity } from "../../src/observe/portIdentity.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { testLaunch } from "./fixtures/launch.ts";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 20 4 30 10 -1
   3: 0200000A:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 444 1 0000000000000000 100 0 0 10 0
   4: 0100007F:1F93 0100007F:1F90 06 00000000:00000000 03:00000F2C 00000000     0        0 0 3 0000000000000000
garbage line
`;

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 555 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 666 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F94 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0
`;

describe("parsing /proc", () => {
  it("decodes addresses in either byte order", () => {
    assert.equal(decodeProcAddress("0100007F", true), "127.0.0.1");
    assert.equal(decodeProcAddress("7F000001", false), "127.0.0.1");
    assert.equal(decodeProcAddress("00000000", true), "0.0.0.0");
    assert.equal(decodeProcAddress("00000000000000000000000000000000", true), "::");
    assert.equal(decodeProcAddress("00000000000000000000000001000000", true), "0:0:0:0:0:0:0:1");
    assert.equal(decodeProcAddress("0000000000000000FFFF00000100007F", true), "::ffff:127.0.0.1");
    assert.equal(decodeProcAddress("xyz", true), null);
  });

  it("finds the listening sockets 127.0.0.1 reaches on a port, nothing else", () => {
    assert.deepEqual(listeningInodes(TCP, 0x1f90, true), ["111"], "established and other ports left out");
    assert.deepEqual(listeningInodes(TCP, 0x1f91, true), ["222"], "0.0.0.0 counts");
    assert.deepEqual(listeningInodes(TCP, 0x1f92, true), [], "10.0.0.2 is not reached through loopback");
    assert.deepEqual(listeningInodes(TCP, 0x1f93, true), [], "TIME_WAIT is not a listener");
    assert.deepEqual(listeningInodes(TCP6, 0x1f90, true), ["555"], ":: counts, ::1 does not");
    assert.deepEqual(listeningInodes(TCP6, 0x1f94, true), ["777"], "::ffff:127.0.0.1 counts");
    assert.deepEqual(listeningInodes("", 0x1f90, true), []);
  });

  it("reads socket links and command lines", () => {
    assert.equal(socketInode("socket:[12345]"), "12345");
    assert.equal(socketInode("pipe:[12345]"), null);
    assert.equal(socketInode("/dev/null"), null);
    assert.equal(commandLine("node\0server.js\0--port\u00008080\0"), "node server.js --port 8080");
    assert.equal(commandLine(""), null);
    assert.equal(commandLine("x".repeat(500))?.length, 160);
  });
});

describe("findPortOwners over a fixture /proc", () => {
  const proc = (over: Partial<ProcReader> = {}): ProcReader => ({
    netTables: () => [TCP, TCP6],
    pids: () => [10, 20, 30, 40],
    fdLinks: (pid) =>
      ({ 10: ["socket:[111]", "/dev/null"], 20: ["socket:[555]"], 30: "unreadable" as const, 40: [] })[pid] ??
      [],
    group: (pid) => ({ 10: 10, 20: 20 })[pid] ?? null,
    groupMembers: (pgid) => (pgid === 10 ? [10] : []),
    cmdline: (pid) => `cmd-${pid}`,
    ...over,
  });

  it("names every holder and their groups", () => {
    const owners = findPortOwners(0x1f90, { proc: proc() });
    assert.deepEqual(owners, {
      kind: "held",
      holders: [
        { pid: 10, pgid: 10, command: "cmd-10" },
        { pid: 20, pgid: 20, command: "cmd-20" },
      ],
      unattributed: 0,
    });
    assert.equal(
      judgePortIdentity(owners, 10).verdict,
      "foreign",
      "a second listener (:: of pid 20) is not ours",
    );
  });

  it("stops at the preferred group when it holds every listener", () => {
    const scanned: number[] = [];
    const owners = findPortOwners(0x1f91, {
      preferGroup: 10,
      proc: proc({
        fdLinks: (pid) => {
          scanned.push(pid);
          return pid === 10 ? ["socket:[222]"] : [];
        },
      }),
    });
    assert.deepEqual(scanned, [10]);
    assert.deepEqual(judgePortIdentity(owners, 10), { verdict: "ours" });
  });

  it("counts sockets it cannot attribute (another user's process) and never calls them ours", () => {
    const owners = findPortOwners(0x1f94, { proc: proc() });
    assert.deepEqual(owners, { kind: "held", holders: [], unattributed: 1 });
    const identity = judgePortIdentity(owners, 10);
    assert.equal(identity.verdict, "foreign");
    assert.match(describeHolders([], 1), /cannot be read/);
  });

  it("free and unavailable", () => {
    assert.deepEqual(findPortOwners(0x1f95, { proc: proc() }), { kind: "free" });
    assert.equal(findPortOwners(0x1f90, { proc: proc({ netTables: () => null }) }).kind, "unavailable");
    assert.equal(judgePortIdentity({ kind: "free" }, 10).verdict, "no-listener");
    assert.equal(judgePortIdentity({ kind: "unavailable", reason: "x" }, 10).verdict, "unverifiable");
  });
});

describe("on this machine", () => {
  const workDir = mkdtempSync(join(tmpdir(), "homeostat-portowner-"));
  const driver = new LocalProcessDriver({ logDir: join(workDir, "logs") });
  const servers: Server[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    await driver.stopAll(0).catch(() => {});
    for (const s of servers) s.close();
    for (const c of children) c.kill("SIGKILL");
    rmSync(workDir, { recursive: true, force: true });
  });

  async function listen(): Promise<{ server: Server; port: number }> {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    return { server, port: typeof address === "object" && address !== null ? address.port : 0 };
  }

  const launch = (instance: string, port: number, command: string, args: string[]): InstanceLaunch =>
    testLaunch({ instance, port, command, args, cwd: workDir });

  it("finds this process as the holder of its own listener", async () => {
    const { port } = await listen();
    const owners = findPortOwners(port);
    assert.equal(owners.kind, "held");
    assert.ok(owners.kind === "held" && owners.holders.some((h) => h.pid === process.pid));
  });

  it("a wrapper (a shell that forks the server) is its own process group: ours", async () => {
    const { server, port } = await listen();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const script = `require("node:http").createServer((q, s) => s.end()).listen(${port}, "127.0.0.1")`;
    // Not `exec`: the shell stays the group leader and node is its child.
    await driver.start(
      launch("wrapped", port, "/bin/sh", ["-c", `${JSON.stringify(process.execPath)} -e '${script}'; true`]),
    );
    const identity = await waitFor(
      () => {
        const found = driver.portIdentity("wrapped", port);
        return found.verdict === "no-listener" ? null : found;
      },
      { timeoutMs: 10_000, what: "the wrapped server listening" },
    );
    assert.deepEqual(identity, { verdict: "ours" });
    await driver.stop("wrapped", 1000);
  });

  it("a foreign listener: the start is refused naming it, and readiness says foreign", async () => {
    const foreign = spawn(
      process.execPath,
      [
        "-e",
        `require("node:net").createServer().listen(0, "127.0.0.1", function () { console.log(this.address().port) })`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(foreign);
    const port = await new Promise<number>((resolve) =>
      foreign.stdout!.once("data", (d) => resolve(Number(String(d)))),
    );
    await assert.rejects(driver.ensurePortFree("victim", port), (error: unknown) => {
      assert.ok(error instanceof HomeostatError);
      assert.equal(error.code, "HS_INSTANCE_PORT_HELD");
      assert.match(error.message, new RegExp(`port ${port} is already held by pid ${foreign.pid} \\(.*node`));
      return true;
    });
    // An instance that does not listen at all, while the foreign process holds its port.
    await driver.start(launch("victim", port, "/bin/sleep", ["30"]));
    const identity = driver.portIdentity("victim", port);
    assert.equal(identity.verdict, "foreign");
    assert.ok(identity.verdict === "foreign" && identity.holders.some((h) => h.pid === foreign.pid));
    await driver.stop("victim", 0);
    foreign.kill("SIGKILL");
    await waitFor(() => findPortOwners(port).kind === "free", { timeoutMs: 5000, what: "the port freed" });
    await driver.ensurePortFree("victim", port);
  });
});
