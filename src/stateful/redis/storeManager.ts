/**
 * Runs the fleet's replicated Redis stores: starts and supervises their `redis-server` members
 * through the local process driver, probes them (PING and a write probe on the primary, `INFO
 * replication` on all), asks the pure decisions (src/decide/stateful/redisFailover.ts) what to
 * do, and carries it out: failover (journaled epoch, promotion, repointing, the data plane's
 * endpoint switched), fencing of a stale primary, restarts of lost members as replicas, planned
 * switchover with no lost write. Incidents and events as the rest of the controller writes them.
 * Its own loop, apart from the controller's reconcile pass: a store's member is not a service
 * instance (restarting a primary in place is how replicated stores lose data). See docs/redis.md.
 */

import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { StoreSnapshot } from "../../dataplane/feedProtocol.ts";
import type { PauseState } from "../../decide/brakes/types.ts";
import {
  decideStore,
  type MemberView,
  rankCandidates,
  type StoreAction,
  type StoreView,
  verifyStore,
} from "../../decide/stateful/redisFailover.ts";
import type { RuntimeHandle } from "../../drivers/driver.ts";
import { LocalProcessDriver } from "../../drivers/local/localProcessDriver.ts";
import { HomeostatError } from "../../errors.ts";
import type { ReleaseSpec, ZoneHost } from "../../spec/model.ts";
import { memberName, type StoreSpec } from "../../spec/stores.ts";
import type { EventRecord, NewEvent, StateStore } from "../../store/index.ts";
import { command, demote, exchange, type ReplicationInfo, replicationInfo } from "./redisClient.ts";
import { isRespError } from "./resp.ts";

/** Where the stores' endpoints are served (the data plane), as the manager needs it. */
export interface StoreEndpointSink {
  setStores(stores: StoreSnapshot[]): void;
  settled(timeoutMs?: number): Promise<boolean>;
}

export interface RedisStoresOptions {
  stores: readonly StoreSpec[];
  store: StateStore;
  /** `<stateDir>`: members' data and logs go to `<stateDir>/redis/`. */
  stateDir: string;
  endpoints: StoreEndpointSink | undefined;
  /** Told about every event after it is stored (the console, tests). */
  onEvent?: (event: EventRecord) => void;
  now?: () => number;
  /**
   * Checked before a member process is started or stopped: throws (HS_FENCED) when this controller
   * no longer leads (src/controller/fencedDriver.ts). Promotions, demotions and repoints are
   * journaled first, and the journal is fenced.
   */
  fence?: (what: string) => void;
  /**
   * The automation pause (`homeostat pause`, docs/brakes.md), asked before every automated failover
   * and member restart: while it returns a pause they are held (an `automation.held` event, the
   * store's incident escalated) and decided again every pass. Fencing a stale primary, repointing
   * a replica and completing a journaled promotion go on: they keep the store safe and finish what
   * was started. Absent: never paused.
   */
  paused?: () => PauseState | null;
}

interface Member {
  name: string;
  index: number;
  port: number;
  placement: ZoneHost;
  priority: number;
  handle: RuntimeHandle | null;
  process: "running" | "exited";
  failures: number;
  info: ReplicationInfo | null;
  /** The last write probe (primary only): ok, refused with an error reply, or no answer. */
  write: "ok" | "refused" | "failed" | null;
  lastOkAt: number | null;
  /** Earliest next restart (backoff), and the current backoff. */
  restartAt: number;
  backoffMs: number;
}

type Phase = "starting" | "healthy" | "failing-over" | "refused" | "held" | "verifying" | "switching-over";

/** An automated action the pause holds now. */
interface Hold {
  kind: "failover" | "restart";
  /** The store (failover) or the member (restart). */
  target: string;
  since: number;
  /** The sentence of its `automation.held` event. */
  reason: string;
  /** Asked for again in the current pass (else it is no longer wanted, and dropped). */
  asked: boolean;
}

interface Runtime {
  spec: StoreSpec;
  epoch: number;
  primary: string;
  members: Map<string, Member>;
  primaryOffset: number | null;
  primaryObservedAt: number | null;
  phase: Phase;
  /** An action (failover, switchover, a restart) under way: no new decision until it ends. */
  busy: boolean;
  /** The primary's epoch the endpoint serves; null while none (a promotion under way). */
  endpointPrimary: string | null;
  incident: { id: number; from: string; mitigated: boolean } | null;
  lastFailover: {
    at: number;
    from: string;
    to: string;
    epoch: number;
    kind: "failover" | "switchover";
    lossBytes: number;
  } | null;
  /** The reason codes of the last refusal, so it is announced once, not every pass. */
  refusalNoted: string | null;
  /** Automated actions the pause holds, by `kind:target`. */
  holds: Map<string, Hold>;
  timer: NodeJS.Timeout | null;
}

/** What `homeostat stores` and `GET /v1/stores` show of one store. */
export interface StoreStatus {
  name: string;
  kind: "redis";
  epoch: number;
  primary: string;
  phase: Phase;
  endpoint: { address: string; port: number; primary: string | null };
  sentinel: { port: number; announce: "endpoint" | "primary" } | null;
  members: {
    name: string;
    zone: string;
    host: string;
    port: number;
    pid: number | null;
    process: "running" | "exited";
    reachable: boolean;
    role: "primary" | "replica" | null;
    offset: number | null;
    lagBytes: number | null;
    linkUp: boolean;
    follows: string | null;
  }[];
  lastFailover: Runtime["lastFailover"];
  openIncident: number | null;
  /** Automated actions held by the pause of automation (docs/brakes.md), oldest first. */
  held: { kind: Hold["kind"]; target: string; since: number; reason: string }[];
}

/** Persisted per store: the topology and each member's process identity, for the next controller. */
interface TopologyFile {
  epoch: number;
  primary: string;
  members: Record<string, RuntimeHandle | null>;
}

const COMMAND_TIMEOUT_MS = 1_000;
const PROBE_KEY = "__homeostat__:probe";

export class RedisStores {
  readonly #options: RedisStoresOptions;
  readonly #driver: LocalProcessDriver;
  readonly #runtimes = new Map<string, Runtime>();
  readonly #now: () => number;
  #stopped = false;

  constructor(options: RedisStoresOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#driver = new LocalProcessDriver({ logDir: path.join(options.stateDir, "redis", "logs") });
    this.#driver.onExit((instance) => {
      for (const runtime of this.#runtimes.values()) {
        const member = runtime.members.get(instance);
        if (member === undefined) continue;
        member.process = "exited";
        this.#event(runtime, "redis.member-exited", "member-exited", `${member.name} exited`, {
          instance: member.name,
        });
      }
    });
  }

  /** Take back the members an earlier controller left running, start the rest, push the endpoints, start probing. */
  async start(): Promise<void> {
    for (const spec of this.#options.stores) {
      const runtime = this.#load(spec);
      this.#runtimes.set(spec.name, runtime);
      await this.#bringUp(runtime);
    }
    this.#pushEndpoints();
    for (const runtime of this.#runtimes.values()) this.#schedule(runtime, 0);
  }

  /** Stop probing and deciding; the members keep running (for `down --keep-fleet` and a controller crash). */
  detach(): void {
    this.#stopped = true;
    for (const runtime of this.#runtimes.values()) if (runtime.timer) clearTimeout(runtime.timer);
  }

  /** Stop probing, then every member (the fleet is going down). */
  async stop(): Promise<void> {
    this.detach();
    this.#options.fence?.("stop every store member");
    await this.#driver.stopAll(5_000);
    for (const runtime of this.#runtimes.values()) this.#save(runtime);
  }

  status(): StoreStatus[] {
    return [...this.#runtimes.values()].map((r) => {
      const primary = r.members.get(r.primary);
      return {
        name: r.spec.name,
        kind: "redis",
        epoch: r.epoch,
        primary: r.primary,
        phase: r.phase,
        endpoint: { address: "127.0.0.1", port: r.spec.port, primary: r.endpointPrimary },
        sentinel: r.spec.sentinel,
        members: [...r.members.values()].map((m) => ({
          name: m.name,
          zone: m.placement.zone,
          host: m.placement.host,
          port: m.port,
          pid: m.process === "running" ? (m.handle?.pid ?? null) : null,
          process: m.process,
          reachable: m.process === "running" && m.failures === 0 && m.info !== null,
          role: m.info?.role ?? null,
          offset: m.info?.offset ?? null,
          lagBytes:
            m.name === r.primary || m.info === null || r.primaryOffset === null
              ? m.name === r.primary && m.info !== null
                ? 0
                : null
              : Math.max(0, r.primaryOffset - m.info.offset),
          linkUp: m.info?.linkUp ?? false,
          follows:
            m.info?.primaryPort == null
              ? null
              : ([...r.members.values()].find((o) => o.port === m.info?.primaryPort)?.name ??
                String(m.info.primaryPort)),
        })),
        lastFailover: r.lastFailover,
        openIncident: r.incident?.id ?? null,
        held: [...r.holds.values()].map(({ kind, target, since, reason }) => ({
          kind,
          target,
          since,
          reason,
        })),
        ...(primary === undefined ? {} : {}),
      };
    });
  }

  /**
   * Planned switchover to `to` (or the best replica): writes paused on the primary (`CLIENT PAUSE
   * WRITE`), the target caught up to the primary's exact offset, then promoted, the old primary
   * made its replica and the endpoint switched. A write is either done before the pause (and on
   * the target) or fails on a closed connection without being applied: none acknowledged is lost.
   *
   * @throws HomeostatError HS_NOT_FOUND (no such store or member), HS_CONFLICT (a failover or
   *   switchover under way, or the target is not a healthy replica), HS_SWITCHOVER_NOT_CAUGHT_UP when the target
   *   does not catch up in time (writes are resumed on the old primary, nothing changed).
   */
  async switchover(
    storeName: string,
    request: { to?: string; reason?: string },
  ): Promise<{
    store: string;
    from: string;
    to: string;
    epoch: number;
    caughtUpMs: number;
    pausedMs: number;
  }> {
    const runtime = this.#runtimes.get(storeName);
    if (runtime === undefined) {
      throw new HomeostatError("HS_NOT_FOUND", `no store "${storeName}"`, { details: { store: storeName } });
    }
    if (runtime.busy || runtime.phase !== "healthy") {
      throw new HomeostatError("HS_CONFLICT", `store ${storeName} is ${runtime.phase}: no switchover now`, {
        details: { store: storeName, phase: runtime.phase },
      });
    }
    const from = runtime.members.get(runtime.primary)!;
    const view = this.#view(runtime);
    let target: Member | undefined;
    if (request.to !== undefined) {
      target = runtime.members.get(request.to);
      if (target === undefined) {
        throw new HomeostatError("HS_NOT_FOUND", `store ${storeName} has no member "${request.to}"`, {
          details: { store: storeName, member: request.to },
        });
      }
    } else {
      const best = rankCandidates(view, view.members.find((m) => m.name === from.name)!).find(
        (c) => c.eligible,
      );
      target = best === undefined ? undefined : runtime.members.get(best.member);
    }
    if (
      target === undefined ||
      target.name === from.name ||
      target.process !== "running" ||
      target.failures > 0 ||
      target.info?.role !== "replica" ||
      target.info.primaryPort !== from.port
    ) {
      throw new HomeostatError(
        "HS_CONFLICT",
        `store ${storeName}: ${target?.name ?? "no member"} is not a healthy replica of ${from.name}`,
        { details: { store: storeName, to: target?.name ?? null } },
      );
    }
    runtime.busy = true;
    runtime.phase = "switching-over";
    const epoch = runtime.epoch + 1;
    const startedAt = this.#now();
    const reasonText = request.reason ?? "planned switchover";
    const journal = this.#options.store.journalIntent({
      at: startedAt,
      action: "redis.switchover",
      target: storeName,
      reason: "operator",
      data: { epoch, from: from.name, to: target.name, reason: reasonText },
    });
    this.#event(
      runtime,
      "redis.switchover.started",
      "operator",
      `${storeName}: switchover ${from.name} → ${target.name} (${reasonText})`,
      {
        epoch,
        from: from.name,
        to: target.name,
      },
    );
    const pauseMs = 10_000;
    let pausedAt = 0;
    try {
      await command(from.port, ["CLIENT", "PAUSE", pauseMs, "WRITE"], COMMAND_TIMEOUT_MS);
      pausedAt = this.#now();
      // Caught up: the target's processed offset reaches the primary's, now frozen for writes.
      const deadline = pausedAt + 5_000;
      let caughtUp = false;
      while (this.#now() < deadline) {
        const [primaryInfo, targetInfo] = await Promise.all([
          command(from.port, ["INFO", "replication"], COMMAND_TIMEOUT_MS),
          command(target.port, ["INFO", "replication"], COMMAND_TIMEOUT_MS),
        ]);
        const p = replicationInfo(String(primaryInfo));
        const t = replicationInfo(String(targetInfo));
        if (t.offset >= p.offset) {
          caughtUp = true;
          break;
        }
        await delay(5);
      }
      if (!caughtUp) {
        await command(from.port, ["CLIENT", "UNPAUSE"], COMMAND_TIMEOUT_MS).catch(() => null);
        throw new HomeostatError(
          "HS_SWITCHOVER_NOT_CAUGHT_UP",
          `store ${storeName}: ${target.name} did not catch up with ${from.name} within 5 s; nothing changed`,
          {
            details: { store: storeName, to: target.name },
          },
        );
      }
      const caughtUpMs = this.#now() - pausedAt;
      // From here the old primary must never be reachable again as one: the endpoint holds new
      // connections and cuts the old ones before the promotion.
      runtime.epoch = epoch;
      runtime.primary = target.name;
      runtime.endpointPrimary = null;
      this.#save(runtime);
      this.#pushEndpoints();
      await command(target.port, ["REPLICAOF", "NO", "ONE"], COMMAND_TIMEOUT_MS);
      // Demoted and its clients closed in one transaction, while writes are still paused: a
      // paused write fails on its closed connection unapplied, and a client connected straight
      // to the old primary (announce: primary) reconnects through its Sentinel to the new one.
      const { clientsClosed } = await demote(from.port, target.port, COMMAND_TIMEOUT_MS);
      await command(from.port, ["CLIENT", "UNPAUSE"], COMMAND_TIMEOUT_MS).catch(() => null);
      await this.#repoint(
        runtime,
        target,
        [...runtime.members.values()].filter((m) => m !== target && m !== from),
      );
      runtime.endpointPrimary = target.name;
      this.#pushEndpoints();
      await this.#options.endpoints?.settled(2_000);
      const pausedMs = this.#now() - pausedAt;
      runtime.lastFailover = {
        at: this.#now(),
        from: from.name,
        to: target.name,
        epoch,
        kind: "switchover",
        lossBytes: 0,
      };
      this.#options.store.journalResult(journal, {
        at: this.#now(),
        ok: true,
        detail: `${target.name} promoted at epoch ${epoch} after catching up in ${caughtUpMs} ms; writes paused ${pausedMs} ms`,
      });
      this.#event(
        runtime,
        "redis.switchover.completed",
        "operator",
        `${storeName}: ${target.name} is primary at epoch ${epoch}; writes were paused ${pausedMs} ms`,
        {
          epoch,
          from: from.name,
          to: target.name,
          caughtUpMs,
          pausedMs,
          clientsClosed,
        },
      );
      runtime.phase = "verifying";
      return { store: storeName, from: from.name, to: target.name, epoch, caughtUpMs, pausedMs };
    } catch (error) {
      if (pausedAt !== 0 && runtime.primary === from.name) {
        await command(from.port, ["CLIENT", "UNPAUSE"], COMMAND_TIMEOUT_MS).catch(() => null);
      }
      if (runtime.phase === "switching-over")
        runtime.phase = runtime.primary === from.name ? "healthy" : "verifying";
      if (runtime.endpointPrimary === null && runtime.primary === target.name) {
        // Promoted but a later step failed: serve the new primary; the loop repoints and verifies.
        runtime.endpointPrimary = target.name;
        this.#pushEndpoints();
      }
      this.#options.store.journalResult(journal, {
        at: this.#now(),
        ok: false,
        detail: String((error as Error).message),
      });
      this.#event(
        runtime,
        "redis.switchover.failed",
        "action-failed",
        `${storeName}: switchover failed: ${(error as Error).message}`,
        {
          from: from.name,
          to: target.name,
        },
      );
      throw error;
    } finally {
      runtime.busy = false;
    }
  }

  // ── The loop ──────────────────────────────────────────────────────────────

  #schedule(runtime: Runtime, delayMs: number): void {
    if (this.#stopped) return;
    runtime.timer = setTimeout(() => {
      // Start to start: a pass that waited out a probe timeout (a hung primary) must not push the
      // next probe a whole interval later, or each failure would cost timeout + interval and the
      // detection budget (interval × failures) would not hold.
      const startedAt = performance.now();
      void this.#pass(runtime).finally(() =>
        this.#schedule(
          runtime,
          Math.max(0, runtime.spec.detection.intervalMs - (performance.now() - startedAt)),
        ),
      );
    }, delayMs);
  }

  async #pass(runtime: Runtime): Promise<void> {
    await this.#probe(runtime);
    if (this.#stopped || runtime.busy) return;
    const now = this.#now();
    const actions = decideStore(this.#view(runtime), now);
    for (const action of actions) {
      if (this.#stopped) return;
      if (this.#heldByPause(runtime, action)) continue;
      try {
        await this.#act(runtime, action);
      } catch (error) {
        this.#event(
          runtime,
          "redis.action-failed",
          "action-failed",
          `${runtime.spec.name}: ${action.kind} failed: ${(error as Error).message}`,
          {
            action: action.kind,
          },
        );
      }
    }
    // A hold not asked for again is no longer wanted (the primary answered, the member is back).
    for (const [key, hold] of runtime.holds) {
      if (hold.asked) hold.asked = false;
      else runtime.holds.delete(key);
    }
    if (
      (runtime.phase === "refused" && !actions.some((a) => a.kind === "refuse")) ||
      (runtime.phase === "held" && !actions.some((a) => a.kind === "failover"))
    )
      this.#primaryReturned(runtime);
    if (runtime.phase === "verifying" || (runtime.incident !== null && runtime.phase !== "refused")) {
      this.#verify(runtime);
    }
  }

  async #probe(runtime: Runtime): Promise<void> {
    const now = this.#now();
    const { timeoutMs } = runtime.spec.detection;
    await Promise.all(
      [...runtime.members.values()].map(async (member) => {
        if (member.process !== "running") {
          member.failures++;
          member.write = null;
          return;
        }
        const isPrimary = member.name === runtime.primary;
        const commands: (string | number)[][] = [["PING"], ["INFO", "replication"]];
        if (isPrimary) commands.push(["SET", PROBE_KEY, `${runtime.epoch}:${now}`, "PX", 60_000]);
        try {
          const [pong, info, write] = await exchange(member.port, commands, timeoutMs);
          if (pong !== "PONG" || typeof info !== "string")
            throw new Error(`unexpected answer ${JSON.stringify(pong)}`);
          member.info = replicationInfo(info);
          member.failures = 0;
          member.lastOkAt = now;
          // Following its primary again: a later exit is a new failure, restarted without delay.
          if (member.info.linkUp) member.backoffMs = 0;
          if (isPrimary) {
            // NOREPLICAS (min-replicas-to-write) or READONLY: alive, not writable; a failover
            // would not help the first, the role check handles the second.
            member.write =
              write === "OK" ? "ok" : write !== undefined && isRespError(write) ? "refused" : "failed";
            if (member.info.role === "primary") {
              runtime.primaryOffset = member.info.offset;
              runtime.primaryObservedAt = now;
            }
          }
        } catch {
          member.failures++;
          member.write = isPrimary ? "failed" : null;
        }
      }),
    );
  }

  #view(runtime: Runtime): StoreView {
    const members: MemberView[] = [...runtime.members.values()].map((m) => ({
      name: m.name,
      index: m.index,
      port: m.port,
      zone: m.placement.zone,
      priority: m.priority,
      process: m.process,
      failures: m.failures,
      role: m.info?.role ?? null,
      offset: m.info?.offset ?? null,
      follows: m.info?.primaryPort ?? null,
      linkUp: m.info?.linkUp ?? false,
    }));
    return {
      store: runtime.spec.name,
      epoch: runtime.epoch,
      primary: runtime.primary,
      members,
      primaryOffset: runtime.primaryOffset,
      primaryObservedAt: runtime.primaryObservedAt,
      policy: {
        failures: runtime.spec.detection.failures,
        maxLagOnFailoverBytes: runtime.spec.maxLagOnFailoverBytes,
        onLag: runtime.spec.onLag,
        // Redis counts replica lag in whole seconds and refreshes its count once a second: the
        // fence closes within max-lag + 2 s of the last ack (measured 1.2-2.5 s with 1 s).
        writeFenceMs:
          runtime.spec.minReplicasToWrite > 0 ? runtime.spec.minReplicasMaxLagS * 1000 + 2_000 : null,
      },
    };
  }

  async #act(runtime: Runtime, action: StoreAction): Promise<void> {
    const name = runtime.spec.name;
    switch (action.kind) {
      case "demote": {
        const member = runtime.members.get(action.member)!;
        const primary = runtime.members.get(runtime.primary)!;
        // Its clients are closed with the demotion (one transaction): those connected to it
        // directly would otherwise stay on a replica, getting READONLY, and never rediscover.
        const { clientsClosed } = await this.#journaled(
          "redis.demote",
          name,
          "stale-primary",
          { member: member.name, epoch: runtime.epoch, reasons: action.reasons },
          () => demote(member.port, primary.port, COMMAND_TIMEOUT_MS),
          closedClients,
        );
        this.#event(
          runtime,
          "redis.fenced",
          "stale-primary",
          `${name}: ${member.name} answered as a primary at a stale epoch; demoted to a replica of ${primary.name} (epoch ${runtime.epoch}) and its ${clientsClosed} client connection(s) closed — the endpoint never pointed at it`,
          {
            instance: member.name,
            epoch: runtime.epoch,
            reasons: action.reasons,
            clientsClosed,
          },
        );
        return;
      }
      case "repoint": {
        const member = runtime.members.get(action.member)!;
        const primary = runtime.members.get(runtime.primary)!;
        await this.#journaled(
          "redis.repoint",
          name,
          "follows-wrong-primary",
          { member: member.name, primary: primary.name, reasons: action.reasons },
          () => command(member.port, ["REPLICAOF", "127.0.0.1", primary.port], COMMAND_TIMEOUT_MS),
        );
        this.#event(
          runtime,
          "redis.repointed",
          "follows-wrong-primary",
          `${name}: ${member.name} now follows ${primary.name}`,
          {
            instance: member.name,
            reasons: action.reasons,
          },
        );
        return;
      }
      case "restart-replica": {
        const member = runtime.members.get(action.member)!;
        const now = this.#now();
        if (now < member.restartAt) return;
        member.backoffMs = Math.min(30_000, member.backoffMs === 0 ? 1_000 : member.backoffMs * 2);
        member.restartAt = now + member.backoffMs;
        await this.#journaled(
          "redis.restart-replica",
          name,
          "member-exited",
          {
            member: member.name,
            primary: runtime.primary,
            backoffMs: member.backoffMs,
            reasons: action.reasons,
          },
          () => this.#startMember(runtime, member, runtime.members.get(runtime.primary)!),
        );
        this.#event(
          runtime,
          "redis.member-started",
          "member-exited",
          `${name}: ${member.name} started as a replica of ${runtime.primary}`,
          {
            instance: member.name,
            reasons: action.reasons,
          },
        );
        return;
      }
      case "complete-promotion": {
        const member = runtime.members.get(action.member)!;
        await this.#journaled(
          "redis.complete-promotion",
          name,
          "recorded-primary-is-replica",
          { member: member.name, epoch: runtime.epoch, reasons: action.reasons },
          () => command(member.port, ["REPLICAOF", "NO", "ONE"], COMMAND_TIMEOUT_MS),
        );
        this.#event(
          runtime,
          "redis.promoted",
          "recorded-primary-is-replica",
          `${name}: ${member.name} is the journal's primary at epoch ${runtime.epoch} but answered as a replica (a promotion interrupted by a controller crash): promoted`,
          { instance: member.name, epoch: runtime.epoch, reasons: action.reasons },
        );
        runtime.phase = "verifying";
        return;
      }
      case "refuse":
        await this.#refuse(runtime, action);
        return;
      case "failover":
        await this.#failover(runtime, action);
        return;
    }
  }

  /**
   * Whether the pause holds `action` now (a failover, a member restart): the failover's incident is
   * opened all the same (the primary did fail) and escalated, and the store's phase says `held`.
   */
  #heldByPause(runtime: Runtime, action: StoreAction): boolean {
    if (action.kind === "restart-replica")
      return this.#held(runtime, "restart", action.member, `restart of ${action.member} as a replica`);
    if (action.kind !== "failover") return false;
    const from = runtime.members.get(action.from)!;
    const what = `failover of ${runtime.spec.name} (${from.name} unreachable; ${action.to} would be promoted at epoch ${action.epoch})`;
    if ((this.#options.paused?.() ?? null) !== null) {
      this.#openIncident(
        runtime,
        from,
        `primary ${from.name} unreachable (${from.failures} probes of ${runtime.spec.detection.intervalMs} ms)`,
      );
    }
    if (!this.#held(runtime, "failover", runtime.spec.name, what)) return false;
    runtime.phase = "held";
    return true;
  }

  /**
   * Asks the pause about one automated action. Held: an `automation.held` event (reason
   * `automation-paused`, as the controller's brakes word it) and an `escalated` step in the store's
   * open incident, once per hold, not every pass. Let go after a hold: `automation.released`.
   */
  #held(runtime: Runtime, kind: Hold["kind"], target: string, what: string): boolean {
    const key = `${kind}:${target}`;
    const hold = runtime.holds.get(key);
    const pause = this.#options.paused?.() ?? null;
    const now = this.#now();
    const scope = kind === "restart" ? { instance: target } : {};
    if (pause === null) {
      if (hold !== undefined) {
        runtime.holds.delete(key);
        this.#event(
          runtime,
          "automation.released",
          "brake-released",
          `${runtime.spec.name}: automated ${what} goes ahead after ${now - hold.since} ms held (${hold.reason})`,
          { ...scope, kind, rule: "paused", target, heldMs: now - hold.since },
        );
      }
      return false;
    }
    if (hold !== undefined) {
      hold.asked = true;
      return true;
    }
    const reason = `automated ${what} held: automation is paused by ${pause.by} since ${new Date(pause.since).toISOString()} (${pause.reason}); \`homeostat resume\` lets it act`;
    runtime.holds.set(key, { kind, target, since: now, reason, asked: true });
    this.#event(runtime, "automation.held", "automation-paused", `${runtime.spec.name}: ${reason}`, {
      ...scope,
      kind,
      rule: "paused",
      target,
      used: 0,
      limit: 0,
      until: null,
    });
    if (runtime.incident !== null) {
      this.#options.store.addIncidentEvent(runtime.incident.id, {
        at: now,
        phase: "escalated",
        detail: reason,
      });
    }
    return true;
  }

  #openIncident(runtime: Runtime, from: Member, detail: string): void {
    if (runtime.incident !== null) return;
    const now = this.#now();
    const incident = this.#options.store.openIncident({
      service: runtime.spec.name,
      instance: from.name,
      kind: "primary-failed",
      reason: "primary-unreachable",
      detectedAt: now,
      lastGoodAt: from.lastOkAt,
      ttdMs: from.lastOkAt === null ? null : now - from.lastOkAt,
      detail,
    });
    this.#options.store.addIncidentEvent(incident.id, { at: now, phase: "detected", detail });
    runtime.incident = { id: incident.id, from: from.name, mitigated: false };
    // As the controller announces its incidents: webhooks (src/notify) and the stream follow these.
    this.#event(runtime, "incident.opened", "incident-opened", `${runtime.spec.name}: ${detail}`, {
      instance: from.name,
      incident: incident.id,
      kind: "primary-failed",
    });
  }

  async #refuse(runtime: Runtime, action: Extract<StoreAction, { kind: "refuse" }>): Promise<void> {
    const from = runtime.members.get(action.from)!;
    const codes = action.reasons.map((r) => r.code).join(",");
    this.#openIncident(runtime, from, `primary ${from.name} unreachable (${from.failures} probes)`);
    runtime.phase = "refused";
    const announce = runtime.refusalNoted !== codes;
    if (announce) this.#announceRefusal(runtime, action);
    // Its own data is the most complete there is: a dead primary's process is started again in
    // place (it reloads its AOF/RDB) rather than waiting for an operator with nothing running.
    // Once per refusal (a process that dies again is not restarted in a loop), or when the pause
    // that held that restart lets it go.
    const restartHeld = runtime.holds.has(`restart:${from.name}`);
    if ((announce || restartHeld) && from.process === "exited" && runtime.spec.persistence !== "none") {
      if (this.#held(runtime, "restart", from.name, `restart of ${from.name} in place from its own data`))
        return;
      await this.#startMember(runtime, from, null);
      this.#event(
        runtime,
        "redis.member-started",
        "failover-refused",
        `${runtime.spec.name}: ${from.name} restarted in place as primary from its own data (no replica could take over without loss)`,
        {
          instance: from.name,
        },
      );
    }
  }

  /** The refusal, once per set of reasons: journal, event, the incident's timeline and detail. */
  #announceRefusal(runtime: Runtime, action: Extract<StoreAction, { kind: "refuse" }>): void {
    const from = runtime.members.get(action.from)!;
    const codes = action.reasons.map((r) => r.code).join(",");
    const loss = action.loss?.statement ?? "no replica can be promoted";
    runtime.refusalNoted = codes;
    const message = `${runtime.spec.name}: no automatic promotion — ${action.best === null ? "no eligible replica" : `the best replica ${action.best} is past maxLagOnFailover (${runtime.spec.maxLagOnFailoverBytes} bytes)`}; promoting it would lose ${loss}. Waiting for ${from.name} to return${runtime.spec.persistence === "none" ? "" : " (restarted from its own data if its process is gone)"}.`;
    this.#journalDone(
      "redis.failover-refused",
      runtime.spec.name,
      action.reasons[action.reasons.length - 1]!.code,
      {
        reasons: action.reasons,
        loss: action.loss,
      },
    );
    this.#event(runtime, "redis.failover.refused", "failover-refused", message, {
      instance: from.name,
      reasons: action.reasons,
      loss: action.loss,
    });
    if (runtime.incident !== null) {
      this.#options.store.addIncidentEvent(runtime.incident.id, {
        at: this.#now(),
        phase: "refused",
        detail: message,
      });
      this.#options.store.updateIncident(runtime.incident.id, { detail: message });
    }
  }

  /** The primary answers again after a refusal: nothing was promoted, the incident is mitigated by its return. */
  #primaryReturned(runtime: Runtime): void {
    runtime.phase = "verifying";
    runtime.refusalNoted = null;
    if (runtime.incident !== null && !runtime.incident.mitigated) {
      runtime.incident.mitigated = true;
      const now = this.#now();
      this.#options.store.updateIncident(runtime.incident.id, { mitigatedAt: now, actionStartedAt: now });
      this.#options.store.addIncidentEvent(runtime.incident.id, {
        at: now,
        phase: "mitigated",
        detail: `${runtime.primary} answers again; it stays primary (epoch ${runtime.epoch})`,
      });
    }
  }

  async #failover(runtime: Runtime, action: Extract<StoreAction, { kind: "failover" }>): Promise<void> {
    const name = runtime.spec.name;
    const from = runtime.members.get(action.from)!;
    const to = runtime.members.get(action.to)!;
    runtime.busy = true;
    runtime.phase = "failing-over";
    runtime.refusalNoted = null;
    try {
      this.#openIncident(
        runtime,
        from,
        `primary ${from.name} unreachable (${from.failures} probes of ${runtime.spec.detection.intervalMs} ms)`,
      );
      const startedAt = this.#now();
      // The epoch is journaled before anything changes: a controller fenced off (another leads)
      // cannot write it, hence cannot promote.
      const journal = this.#options.store.journalIntent({
        at: startedAt,
        action: "redis.promote",
        target: name,
        reason: "primary-unreachable",
        data: {
          epoch: action.epoch,
          from: from.name,
          to: to.name,
          reasons: action.reasons,
          loss: action.loss,
        },
      });
      if (runtime.incident !== null) {
        this.#options.store.updateIncident(runtime.incident.id, { actionStartedAt: startedAt });
        this.#options.store.addIncidentEvent(runtime.incident.id, {
          at: startedAt,
          phase: "action",
          detail: `promote ${to.name} at epoch ${action.epoch}; may lose: ${action.loss.statement}`,
        });
      }
      this.#event(
        runtime,
        "redis.failover.started",
        "primary-unreachable",
        `${name}: ${from.name} unreachable; promoting ${to.name} (epoch ${action.epoch})${action.lagWarning ? ` past maxLagOnFailover — may lose ${action.loss.statement}` : ""}`,
        {
          instance: from.name,
          epoch: action.epoch,
          from: from.name,
          to: to.name,
          reasons: action.reasons,
          loss: action.loss,
        },
      );
      runtime.epoch = action.epoch;
      runtime.primary = to.name;
      // The endpoint lets go of the old primary before anything else: new connections wait.
      runtime.endpointPrimary = null;
      this.#save(runtime);
      this.#pushEndpoints();
      try {
        await command(to.port, ["REPLICAOF", "NO", "ONE"], COMMAND_TIMEOUT_MS);
      } catch (error) {
        // Not promoted: the next pass plans again (another replica, or this one once it answers).
        runtime.primary = from.name;
        runtime.endpointPrimary = from.name;
        this.#save(runtime);
        this.#pushEndpoints();
        this.#options.store.journalResult(journal, {
          at: this.#now(),
          ok: false,
          detail: `REPLICAOF NO ONE on ${to.name}: ${(error as Error).message}`,
        });
        throw error;
      }
      runtime.endpointPrimary = to.name;
      this.#pushEndpoints();
      const others = action.repoint.map((m) => runtime.members.get(m)!);
      await this.#repoint(runtime, to, others);
      // A stopped (not dead) old primary gets its demotion queued (REPLICAOF and the closing of
      // its clients, in one transaction): it runs it when it resumes, before it answers anyone.
      // (Its probes demote it anyway if this is lost: see decideStore's stale-primary.)
      if (from.process === "running") {
        void this.#journaled(
          "redis.demote",
          name,
          "stale-primary",
          { member: from.name, epoch: action.epoch, queued: true },
          () => demote(from.port, to.port, 200),
          closedClients,
        ).catch(() => null);
      }
      await this.#options.endpoints?.settled(1_000);
      const switchedAt = this.#now();
      runtime.lastFailover = {
        at: switchedAt,
        from: from.name,
        to: to.name,
        epoch: action.epoch,
        kind: "failover",
        lossBytes: action.loss.knownBytes,
      };
      this.#options.store.journalResult(journal, {
        at: switchedAt,
        ok: true,
        detail: `${to.name} promoted at epoch ${action.epoch}; endpoint switched ${switchedAt - startedAt} ms after the decision`,
      });
      this.#event(
        runtime,
        "redis.promoted",
        "promoted",
        `${name}: ${to.name} is primary at epoch ${action.epoch}; the endpoint forwards to it (${switchedAt - startedAt} ms after the decision)`,
        {
          instance: to.name,
          epoch: action.epoch,
          from: from.name,
          to: to.name,
        },
      );
      from.failures = 0;
      from.info = null;
      runtime.primaryOffset = null;
      runtime.primaryObservedAt = null;
      runtime.phase = "verifying";
    } finally {
      runtime.busy = false;
    }
  }

  async #repoint(runtime: Runtime, primary: Member, members: Member[]): Promise<void> {
    await Promise.all(
      members
        .filter((m) => m.process === "running")
        .map((m) =>
          // One that last answered as a primary is demoted, its clients closed (see demote).
          (m.info?.role === "primary"
            ? demote(m.port, primary.port, COMMAND_TIMEOUT_MS)
            : command(m.port, ["REPLICAOF", "127.0.0.1", primary.port], COMMAND_TIMEOUT_MS)
          ).catch((error) =>
            this.#event(
              runtime,
              "redis.action-failed",
              "action-failed",
              `${runtime.spec.name}: repointing ${m.name} failed: ${(error as Error).message}; retried by the next pass`,
              {
                instance: m.name,
              },
            ),
          ),
        ),
    );
  }

  #verify(runtime: Runtime): void {
    const primary = runtime.members.get(runtime.primary)!;
    const writable = primary.write === "ok";
    const incident = runtime.incident;
    const now = this.#now();
    if (incident !== null && writable && !incident.mitigated) {
      incident.mitigated = true;
      this.#options.store.updateIncident(incident.id, {
        mitigatedAt: now,
        ttrMs: now - (this.#options.store.getIncident(incident.id)?.detectedAt ?? now),
      });
      this.#options.store.addIncidentEvent(incident.id, {
        at: now,
        phase: "mitigated",
        detail: `${primary.name} accepts writes through the endpoint's target (epoch ${runtime.epoch})`,
      });
    }
    const oldPrimary = runtime.lastFailover?.from ?? incident?.from ?? null;
    const result = verifyStore(
      this.#view(runtime),
      writable,
      oldPrimary === runtime.primary ? null : oldPrimary,
    );
    if (!result.verified) return;
    runtime.phase = "healthy";
    if (incident !== null) {
      this.#options.store.updateIncident(incident.id, {
        stabilizedAt: now,
        verifiedAt: now,
        closedAt: now,
        status: "closed",
      });
      this.#options.store.addIncidentEvent(incident.id, {
        at: now,
        phase: "verified",
        detail: result.checks.map((c) => `${c.check} ${c.member}: ${c.detail}`).join("; "),
      });
      this.#event(
        runtime,
        "incident.verified",
        "stabilized",
        `${runtime.spec.name}: incident #${incident.id} verified`,
        {
          instance: incident.from,
          incident: incident.id,
        },
      );
      runtime.incident = null;
    }
    this.#event(
      runtime,
      "redis.verified",
      "stabilized",
      `${runtime.spec.name}: ${primary.name} accepts writes, replicas follow within ${runtime.spec.maxLagOnFailoverBytes} bytes${oldPrimary !== null && oldPrimary !== primary.name ? `, ${oldPrimary} is a replica` : ""} (epoch ${runtime.epoch})`,
      {
        epoch: runtime.epoch,
        checks: result.checks,
      },
    );
  }

  // ── Members ───────────────────────────────────────────────────────────────

  #load(spec: StoreSpec): Runtime {
    const file = this.#readTopology(spec);
    // Epochs only grow: the journal's promotions count even if the topology file was lost.
    const journaled = this.#options.store
      .listJournal({ limit: 100_000 })
      .filter(
        (j) => (j.action === "redis.promote" || j.action === "redis.switchover") && j.target === spec.name,
      )
      .map((j) => Number((j.data as { epoch?: number } | undefined)?.epoch ?? 0));
    const epoch = Math.max(file?.epoch ?? 1, ...journaled);
    const members = new Map<string, Member>();
    for (let index = 0; index <= spec.replicas; index++) {
      const name = memberName(spec.name, index);
      members.set(name, {
        name,
        index,
        port: spec.basePort + index,
        placement: spec.placement[index % spec.placement.length]!,
        priority: spec.priorities[index] ?? 100,
        handle: file?.members[name] ?? null,
        process: "exited",
        failures: 0,
        info: null,
        write: null,
        lastOkAt: null,
        restartAt: 0,
        backoffMs: 0,
      });
    }
    const primary = file !== null && members.has(file.primary) ? file.primary : memberName(spec.name, 0);
    return {
      spec,
      epoch,
      primary,
      members,
      primaryOffset: null,
      primaryObservedAt: null,
      phase: "starting",
      busy: false,
      endpointPrimary: primary,
      incident: null,
      lastFailover: null,
      refusalNoted: null,
      holds: new Map(),
      timer: null,
    };
  }

  async #bringUp(runtime: Runtime): Promise<void> {
    for (const member of runtime.members.values()) {
      if (member.handle === null) continue;
      const adopted = await this.#driver.adopt(member.name, member.handle);
      if (adopted === "adopted") {
        member.process = "running";
        this.#event(
          runtime,
          "redis.member-adopted",
          "adopted",
          `${runtime.spec.name}: ${member.name} adopted (pid ${member.handle.pid})`,
          {
            instance: member.name,
          },
        );
      }
    }
    const primary = runtime.members.get(runtime.primary)!;
    const anyRunning = [...runtime.members.values()].some((m) => m.process === "running");
    // A whole store down (first start, a reboot): the recorded primary starts as primary. With
    // others running, a primary that is gone is a failure for the probes to judge, not a restart.
    if (!anyRunning) await this.#startMember(runtime, primary, null);
    for (const member of runtime.members.values()) {
      if (member.process !== "running" && member !== primary)
        await this.#startMember(runtime, member, primary);
    }
    runtime.phase = "healthy";
    this.#save(runtime);
  }

  /** Start `member` as a replica of `primary`, or as the primary when `primary` is null. */
  async #startMember(runtime: Runtime, member: Member, primary: Member | null): Promise<void> {
    const spec = runtime.spec;
    const dir = path.join(this.#options.stateDir, "redis", spec.name, member.name);
    mkdirSync(dir, { recursive: true });
    const args = [
      "--port",
      String(member.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--daemonize",
      "no",
      "--replica-priority",
      String(member.priority),
      "--replica-read-only",
      "yes",
      "--min-replicas-to-write",
      String(spec.minReplicasToWrite),
      "--min-replicas-max-lag",
      String(spec.minReplicasMaxLagS),
      // A replacement replica syncs at once, without waiting for others to join the transfer.
      "--repl-diskless-sync",
      "yes",
      "--repl-diskless-sync-delay",
      "0",
      ...persistenceArgs(spec.persistence),
      ...Object.entries(spec.config).flatMap(([k, v]) => [`--${k}`, v]),
      ...(primary === null ? [] : ["--replicaof", "127.0.0.1", String(primary.port)]),
    ];
    const release: ReleaseSpec = {
      version: "redis",
      command: spec.command,
      args,
      env: {},
      config: {},
      cwd: dir,
      secrets: [],
      requires: { schemas: {}, apis: {} },
      provides: {},
      migrations: [],
    };
    await this.#driver.ensurePortFree(member.name, member.port);
    this.#options.fence?.(`start ${member.name}`);
    member.handle = await this.#driver.start({
      instance: member.name,
      service: spec.name,
      slot: member.index,
      port: member.port,
      release,
      placement: member.placement,
    });
    member.process = "running";
    member.failures = 0;
    member.info = null;
    this.#save(runtime);
  }

  // ── Endpoints, persistence, events ───────────────────────────────────────

  #pushEndpoints(): void {
    const sink = this.#options.endpoints;
    if (sink === undefined) return;
    sink.setStores(
      [...this.#runtimes.values()].map((r): StoreSnapshot => {
        const target = r.endpointPrimary === null ? undefined : r.members.get(r.endpointPrimary);
        return {
          name: r.spec.name,
          port: r.spec.port,
          sentinel: r.spec.sentinel,
          epoch: r.epoch,
          primary:
            target === undefined ? null : { member: target.name, address: "127.0.0.1", port: target.port },
          replicas: [...r.members.values()]
            .filter((m) => m.name !== r.primary)
            .map((m) => ({ member: m.name, address: "127.0.0.1", port: m.port })),
        };
      }),
    );
  }

  #topologyPath(spec: StoreSpec): string {
    return path.join(this.#options.stateDir, "redis", spec.name, "topology.json");
  }

  #readTopology(spec: StoreSpec): TopologyFile | null {
    try {
      return JSON.parse(readFileSync(this.#topologyPath(spec), "utf8")) as TopologyFile;
    } catch {
      return null;
    }
  }

  /** Written to a temporary file and renamed: a crash leaves the old topology or the new, never half. */
  #save(runtime: Runtime): void {
    const file = this.#topologyPath(runtime.spec);
    mkdirSync(path.dirname(file), { recursive: true });
    const topology: TopologyFile = {
      epoch: runtime.epoch,
      primary: runtime.primary,
      members: Object.fromEntries([...runtime.members.values()].map((m) => [m.name, m.handle])),
    };
    writeFileSync(`${file}.tmp`, `${JSON.stringify(topology, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  /** Intent journaled before `run`, its result after: a crash in between is visible to the next controller. */
  async #journaled<T>(
    action: string,
    target: string,
    reason: string,
    data: unknown,
    run: () => Promise<T>,
    describe: (value: T) => string = () => action,
  ): Promise<T> {
    const id = this.#options.store.journalIntent({ at: this.#now(), action, target, reason, data });
    try {
      const value = await run();
      this.#options.store.journalResult(id, { at: this.#now(), ok: true, detail: describe(value) });
      return value;
    } catch (error) {
      this.#options.store.journalResult(id, { at: this.#now(), ok: false, detail: (error as Error).message });
      throw error;
    }
  }

  #journalDone(action: string, target: string, reason: string, data: unknown): void {
    const id = this.#options.store.journalIntent({ at: this.#now(), action, target, reason, data });
    this.#options.store.journalResult(id, { at: this.#now(), ok: true, detail: action });
  }

  #event(
    runtime: Runtime,
    type: string,
    reason: string,
    message: string,
    data: Record<string, unknown>,
  ): void {
    const { instance, ...rest } = data;
    const event: NewEvent = {
      at: this.#now(),
      type,
      service: runtime.spec.name,
      ...(typeof instance === "string" ? { instance } : {}),
      reason,
      message,
      data: { store: runtime.spec.name, epoch: runtime.epoch, ...rest },
    };
    const record = this.#options.store.appendEvent(event);
    this.#options.onEvent?.(record);
  }
}

function persistenceArgs(persistence: StoreSpec["persistence"]): string[] {
  switch (persistence) {
    case "aof":
      return ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""];
    case "rdb":
      return ["--appendonly", "no", "--save", "3600 1 300 100 60 10000"];
    case "none":
      return ["--appendonly", "no", "--save", ""];
  }
}

/** A demotion's journal detail: how many client connections it closed. */
function closedClients({ clientsClosed }: { clientsClosed: number }): string {
  return `demoted; ${clientsClosed} client connection(s) closed`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * After a controller crash (`homeostat down FILE`): stop the store members recorded in the
 * state directory's topology files, each only if its pid still has the recorded start time.
 * Returns the members stopped.
 */
export async function stopOrphanedStoreMembers(
  stateDir: string,
  driver: LocalProcessDriver,
): Promise<string[]> {
  const root = path.join(stateDir, "redis");
  const stopped: string[] = [];
  let stores: string[];
  try {
    stores = readdirSync(root);
  } catch {
    return stopped;
  }
  for (const store of stores) {
    let topology: TopologyFile;
    try {
      topology = JSON.parse(readFileSync(path.join(root, store, "topology.json"), "utf8")) as TopologyFile;
    } catch {
      continue;
    }
    for (const [member, handle] of Object.entries(topology.members)) {
      if (handle === null) continue;
      if ((await driver.adopt(member, handle)) !== "adopted") continue;
      await driver.stop(member, 5_000);
      stopped.push(member);
    }
  }
  return stopped;
}
