/**
 * A replicated Redis store run by {@link RedisStores} with real redis-server members and the data
 * plane's real store endpoints (in this process), on free ports, in a temporary state directory;
 * `close` stops the members (SIGKILL if needed), the endpoints and removes everything, and is
 * meant for `after`/`finally` so nothing outlives a failing test. Also a writer that writes
 * sequence-numbered keys through the endpoint and records which writes were acknowledged, and a
 * plain connection straight to a member that tells when the server closes it.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { StoreSnapshot } from "../../src/dataplane/feedProtocol.ts";
import { StoreEndpoints } from "../../src/dataplane/redisEndpoint.ts";
import type { PauseState } from "../../src/decide/brakes/types.ts";
import { parseFleet } from "../../src/spec/index.ts";
import type { StoreSpec } from "../../src/spec/stores.ts";
import { exchange } from "../../src/stateful/redis/redisClient.ts";
import { encodeCommand } from "../../src/stateful/redis/resp.ts";
import { RedisStores, type StoreStatus } from "../../src/stateful/redis/storeManager.ts";
import type { EventRecord } from "../../src/store/index.ts";
import { StateStore } from "../../src/store/index.ts";
import { freePort, freePortRange } from "./e2e.ts";
import { waitFor } from "./waitFor.ts";

export interface Harness {
  spec: StoreSpec;
  stores: RedisStores;
  endpoints: StoreEndpoints;
  state: StateStore;
  events: EventRecord[];
  /** Every endpoint target applied, in order (epoch, primary member or null). */
  targets: { epoch: number; primary: string | null }[];
  status(): StoreStatus;
  portOf(member: string): number;
  pidOf(member: string): number;
  close(): Promise<void>;
}

/**
 * Starts a store from the YAML lines of `stores.cache` (ports filled in) and waits until it is
 * healthy. `announce` is the Sentinel port's (default: the endpoint); `paused` stands for the
 * automation brakes' pause.
 */
export async function startStore(
  extra = "",
  { announce, paused }: { announce?: "endpoint" | "primary"; paused?: () => PauseState | null } = {},
): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), "hs-redis-store-"));
  const basePort = await freePortRange(3);
  const port = await freePort();
  const sentinelPort = await freePort();
  const text = `version: 1\nservices: {}\nstores:\n  cache:\n    kind: redis\n    replicas: 2\n    basePort: ${basePort}\n    port: ${port}\n    sentinel: { port: ${sentinelPort}${announce === undefined ? "" : `, announce: ${announce}`} }\n    placement: { zones: [a, b, c] }\n${extra}`;
  const parsed = parseFleet(text, path.join(dir, "fleet.yaml"));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const spec = parsed.fleet.stores![0]!;
  const stateDir = path.join(dir, "state");
  const state = StateStore.open(stateDir);
  const endpoints = new StoreEndpoints();
  const targets: Harness["targets"] = [];
  let applied: Promise<void> = Promise.resolve();
  const events: EventRecord[] = [];
  const stores = new RedisStores({
    stores: [spec],
    store: state,
    stateDir,
    endpoints: {
      setStores: (snapshots: StoreSnapshot[]) => {
        for (const s of snapshots) targets.push({ epoch: s.epoch, primary: s.primary?.member ?? null });
        applied = applied.then(() => endpoints.apply(snapshots));
      },
      settled: async () => {
        await applied;
        return true;
      },
    },
    onEvent: (e) => events.push(e),
    ...(paused === undefined ? {} : { paused }),
  });
  const harness: Harness = {
    spec,
    stores,
    endpoints,
    state,
    events,
    targets,
    status: () => stores.status()[0]!,
    portOf: (member) => spec.basePort + Number(member.split("-").pop()),
    pidOf: (member) => {
      const pid = harness.status().members.find((m) => m.name === member)?.pid;
      if (pid == null) throw new Error(`${member} has no pid`);
      return pid;
    },
    close: async () => {
      const pids = stores.status()[0]?.members.map((m) => m.pid) ?? [];
      for (const pid of pids) {
        // A member left stopped by a test would never see SIGTERM.
        if (pid !== null) {
          try {
            process.kill(pid, "SIGCONT");
          } catch {}
        }
      }
      await stores.stop().catch(() => {});
      for (const pid of pids) {
        if (pid === null) continue;
        try {
          process.kill(-pid, "SIGKILL");
        } catch {}
      }
      await endpoints.close();
      state.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await stores.start();
    await applied;
    await waitFor(
      () => {
        const s = harness.status();
        return (
          s.phase === "healthy" && s.members.every((m) => m.reachable && (m.role === "primary" || m.linkUp))
        );
      },
      { what: "store healthy", timeoutMs: 20_000 },
    );
  } catch (error) {
    await harness.close();
    throw error;
  }
  return harness;
}

/**
 * Writes `seq:N` keys through the endpoint every `everyMs`, one connection at a time (reconnecting
 * after any error), and records which were acknowledged (`OK`) and which failed.
 */
export class SeqWriter {
  readonly acked: number[] = [];
  failed = 0;
  #seq = 0;
  #stopped = false;
  #done: Promise<void>;
  /** Epoch ms of every acknowledged write, by sequence number. */
  readonly ackedAt = new Map<number, number>();

  constructor(port: number, everyMs = 2) {
    this.#done = (async () => {
      while (!this.#stopped) {
        const seq = ++this.#seq;
        try {
          const [reply] = await exchange(port, [["SET", `seq:${seq}`, String(seq)]], 1_000);
          if (reply === "OK") {
            this.acked.push(seq);
            this.ackedAt.set(seq, Date.now());
          } else this.failed++;
        } catch {
          this.failed++;
        }
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }
}

/** The acknowledged sequence numbers missing from the member on `port`. */
export async function missingOn(port: number, acked: readonly number[]): Promise<number[]> {
  const missing: number[] = [];
  for (let i = 0; i < acked.length; i += 500) {
    const batch = acked.slice(i, i + 500);
    const [values] = await exchange(port, [["MGET", ...batch.map((s) => `seq:${s}`)]], 5_000);
    (values as (string | null)[]).forEach((v, j) => {
      if (v === null) missing.push(batch[j]!);
    });
  }
  return missing;
}

/** A plain connection straight to a member, after its first reply; `closed` turns true when the server closes it. */
export async function directClient(
  port: number,
  first: readonly string[] = ["PING"],
): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = net.connect({ host: "127.0.0.1", port });
  let closed = false;
  let answered = false;
  socket.on("close", () => {
    closed = true;
  });
  socket.on("error", () => {});
  socket.on("data", () => {
    answered = true;
  });
  socket.write(encodeCommand(first));
  try {
    await waitFor(() => answered || closed, { what: `a reply from ${port}` });
    assert.equal(closed, false, `${port} closed the connection at once`);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return { socket, closed: () => closed };
}
