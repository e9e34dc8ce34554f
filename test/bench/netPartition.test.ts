import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server, Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  healOrphanedPartitions,
  netPartitionUnavailable,
  partitionPorts,
} from "../../bench/common/netPartition.ts";

type Outcome = "connected" | "refused" | "timeout";

/** Connect to 127.0.0.1:port and say what happened within `timeoutMs`. */
async function connectOutcome(port: number, timeoutMs: number): Promise<Outcome> {
  const socket = new Socket();
  try {
    return await new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve("connected");
      });
      socket.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(error.code === "ECONNREFUSED" || error.code === "ECONNRESET" ? "refused" : "timeout");
      });
      socket.connect(port, "127.0.0.1");
    });
  } finally {
    socket.destroy();
  }
}

async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.pipe(socket));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return { server, port: address.port };
}

const unavailable = await netPartitionUnavailable();

describe("netPartition (real nftables rules on loopback)", { skip: unavailable ?? false }, () => {
  let cut: { server: Server; port: number };
  let spared: { server: Server; port: number };
  before(async () => {
    cut = await listen();
    spared = await listen();
  });
  after(() => {
    cut.server.close();
    spared.server.close();
  });

  it("a blackhole makes connects to the cut port hang, spares other ports, and heals", async () => {
    assert.equal(await connectOutcome(cut.port, 2_000), "connected");
    const partition = await partitionPorts([cut.port], "blackhole");
    try {
      // A dropped SYN is retransmitted after 1 s: 500 ms without an answer is the blackhole.
      assert.equal(await connectOutcome(cut.port, 500), "timeout");
      assert.equal(await connectOutcome(spared.port, 2_000), "connected");
    } finally {
      await partition.heal();
    }
    assert.equal(await connectOutcome(cut.port, 2_000), "connected");
    await partition.heal(); // idempotent
  });

  it("a blackhole stalls a connection that was already open", async () => {
    const socket = new Socket();
    socket.connect(cut.port, "127.0.0.1");
    await once(socket, "connect");
    const partition = await partitionPorts([cut.port]);
    try {
      let echoed = "";
      socket.on("data", (chunk: Buffer) => {
        echoed += chunk.toString();
      });
      socket.write("ping");
      const deadline = Date.now() + 400;
      while (Date.now() < deadline && echoed === "") await new Promise((r) => setTimeout(r, 20));
      assert.equal(echoed, "", "no byte crosses the cut");
      await partition.heal();
      const healedBy = Date.now() + 5_000; // TCP's retransmission timer (200 ms, doubling) resends it
      while (Date.now() < healedBy && echoed === "") await new Promise((r) => setTimeout(r, 20));
      assert.equal(echoed, "ping");
    } finally {
      await partition.heal();
      socket.destroy();
    }
  });

  it("a reject answers connects to the cut port with a reset at once", async () => {
    const partition = await partitionPorts([cut.port], "reject");
    try {
      assert.equal(await connectOutcome(cut.port, 1_000), "refused");
    } finally {
      await partition.heal();
    }
  });

  it("removes the tables of a process that died before healing, and only those", async () => {
    const mine = await partitionPorts([cut.port]);
    try {
      const { execFileSync } = await import("node:child_process");
      // A pid that is not running: the kernel's pid_max is far below this.
      const orphan = "homeostat_fault_4194999_1";
      execFileSync("nft", ["add", "table", "inet", orphan]);
      const removed = await healOrphanedPartitions();
      assert.ok(removed.includes(orphan), `removed ${removed.join(", ")}`);
      assert.ok(!removed.includes(mine.table));
      assert.match(execFileSync("nft", ["list", "tables"], { encoding: "utf8" }), new RegExp(mine.table));
    } finally {
      await mine.heal();
    }
  });
});
