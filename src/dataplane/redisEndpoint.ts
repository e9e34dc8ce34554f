/**
 * The stable endpoints of replicated Redis stores, served by the data-plane process (so they keep
 * forwarding to the last primary they were told while the controller is down):
 *
 * - a TCP forwarding port per store: every connection is spliced to the current primary; the
 *   target is one field, switched in one step when a snapshot names a new primary, and every
 *   connection to the previous one is closed at that moment (a demoted primary keeps no client);
 *   while no primary is known (a failover under way) new connections wait, up to a bound, for one;
 * - a Sentinel-compatible port: `SENTINEL get-master-addr-by-name`, `sentinels`, `masters`,
 *   `master`, `replicas`/`slaves`, `PING`, and `SUBSCRIBE +switch-master` (published on every
 *   switch), so ioredis, redis-py and other Sentinel-aware clients find the primary unchanged.
 *
 * Fencing: a store's epoch never goes down here. A snapshot with a lower epoch than the one served
 * (a stale controller) leaves the store as it is. See docs/redis.md#the-stable-endpoint.
 */

import net from "node:net";
import { encodeReply, encodeStatus, RespParser, type RespValue } from "../stateful/redis/resp.ts";
import type { StoreSnapshot } from "./feedProtocol.ts";

/** How long a new connection waits for a primary while none is known before it is closed. */
export const HOLD_WITHOUT_PRIMARY_MS = 5_000;

type Target = NonNullable<StoreSnapshot["primary"]>;

/** Where an endpoint's events go (the data plane's event list, for the controller's log). */
export type EndpointEvents = (type: string, message: string, data: Record<string, unknown>) => void;

interface Spliced {
  client: net.Socket;
  upstream: net.Socket | null;
  /** The primary it was spliced to (null: waiting for one). */
  target: Target | null;
}

/** What a store's endpoint reports: what it forwards to, and how many connections it holds. */
export type StoreEndpointState = {
  port: number;
  sentinelPort: number | null;
  epoch: number;
  primary: Target | null;
  connections: number;
  waiting: number;
  /** Connections closed because their primary was replaced, since start. */
  cutOnSwitch: number;
  switches: number;
};

class StoreEndpoint {
  snapshot: StoreSnapshot;
  readonly #server: net.Server;
  #sentinel: net.Server | null = null;
  readonly #connections = new Set<Spliced>();
  readonly #subscribers = new Set<net.Socket>();
  readonly #sentinelClients = new Set<net.Socket>();
  #cutOnSwitch = 0;
  #switches = 0;
  readonly #onEvent: EndpointEvents;

  constructor(snapshot: StoreSnapshot, onEvent: EndpointEvents) {
    this.snapshot = snapshot;
    this.#lastPrimary = snapshot.primary;
    this.#onEvent = onEvent;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  async listen(): Promise<void> {
    await listenOn(this.#server, this.snapshot.port);
    if (this.snapshot.sentinel !== null) {
      this.#sentinel = net.createServer((socket) => this.#sentinelSession(socket));
      try {
        await listenOn(this.#sentinel, this.snapshot.sentinel.port);
      } catch (error) {
        this.#server.close();
        throw error;
      }
    }
  }

  /** Serve `next`: switch the target in one step, cutting every connection to the previous one. */
  /** The last primary this endpoint forwarded to (kept through a "no primary" interval). */
  #lastPrimary: StoreSnapshot["primary"] = null;

  update(next: StoreSnapshot): "applied" | "stale" {
    const previous = this.snapshot;
    if (next.epoch < previous.epoch) return "stale";
    this.snapshot = next;
    const before = previous.primary;
    const after = next.primary;
    const changed = !sameTarget(before, after) || next.epoch !== previous.epoch;
    if (!changed) return "applied";
    this.#switches++;
    let cut = 0;
    for (const spliced of this.#connections) {
      if (spliced.target === null) {
        if (after !== null) this.#splice(spliced, after);
        continue;
      }
      if (!sameTarget(spliced.target, after)) {
        cut++;
        this.#drop(spliced);
      }
    }
    this.#cutOnSwitch += cut;
    // A failover passes through "no primary" (old → null → new): announce against the last primary
    // that was served, or Sentinel-aware clients would never hear of the switch.
    const from = before ?? this.#lastPrimary;
    if (after !== null) this.#lastPrimary = after;
    if (after !== null && from !== null && !sameTarget(from, after)) {
      const announce = this.#announced();
      const old = this.#announcedFor(from);
      const message = `${next.name} ${old.host} ${old.port} ${announce?.host ?? after.address} ${announce?.port ?? after.port}`;
      for (const subscriber of this.#subscribers) {
        subscriber.write(encodeReply(["message", "+switch-master", message]));
      }
    }
    this.#onEvent(
      "redis.endpoint-switched",
      `${next.name}: endpoint :${next.port} now forwards to ${after === null ? "nothing (no primary)" : `${after.member} (${after.address}:${after.port})`}, epoch ${next.epoch}; ${cut} connection(s) to the previous primary closed`,
      {
        store: next.name,
        epoch: next.epoch,
        primary: after?.member ?? null,
        previous: before?.member ?? null,
        cut,
      },
    );
    return "applied";
  }

  state(): StoreEndpointState {
    let waiting = 0;
    for (const s of this.#connections) if (s.target === null) waiting++;
    return {
      port: this.snapshot.port,
      sentinelPort: this.snapshot.sentinel?.port ?? null,
      epoch: this.snapshot.epoch,
      primary: this.snapshot.primary,
      connections: this.#connections.size,
      waiting,
      cutOnSwitch: this.#cutOnSwitch,
      switches: this.#switches,
    };
  }

  async close(): Promise<void> {
    for (const spliced of this.#connections) this.#drop(spliced);
    for (const socket of this.#sentinelClients) socket.destroy();
    await Promise.all([closeServer(this.#server), this.#sentinel ? closeServer(this.#sentinel) : null]);
  }

  #accept(client: net.Socket): void {
    client.setNoDelay(true);
    // Bytes the client sends before the primary answers wait in the socket: nothing is read early.
    client.pause();
    const spliced: Spliced = { client, upstream: null, target: null };
    this.#connections.add(spliced);
    client.on("error", () => this.#drop(spliced));
    client.on("close", () => this.#drop(spliced));
    const target = this.snapshot.primary;
    if (target !== null) {
      this.#splice(spliced, target);
      return;
    }
    const timer = setTimeout(() => {
      if (spliced.target === null) this.#drop(spliced);
    }, HOLD_WITHOUT_PRIMARY_MS);
    timer.unref();
    client.once("close", () => clearTimeout(timer));
  }

  #splice(spliced: Spliced, target: Target): void {
    spliced.target = target;
    const upstream = net.connect({ host: target.address, port: target.port });
    upstream.setNoDelay(true);
    spliced.upstream = upstream;
    upstream.on("connect", () => {
      spliced.client.pipe(upstream);
      upstream.pipe(spliced.client);
      spliced.client.resume();
    });
    upstream.on("error", () => this.#drop(spliced));
    upstream.on("close", () => this.#drop(spliced));
  }

  #drop(spliced: Spliced): void {
    if (!this.#connections.delete(spliced)) return;
    spliced.upstream?.destroy();
    spliced.client.destroy();
  }

  /** The address Sentinel clients are given: the stable endpoint, or the primary's own. */
  #announced(): { host: string; port: number } | null {
    const primary = this.snapshot.primary;
    if (primary === null) return null;
    return this.#announcedFor(primary);
  }

  #announcedFor(target: Target): { host: string; port: number } {
    return this.snapshot.sentinel?.announce === "primary"
      ? { host: target.address, port: target.port }
      : { host: "127.0.0.1", port: this.snapshot.port };
  }

  #sentinelSession(socket: net.Socket): void {
    this.#sentinelClients.add(socket);
    const parser = new RespParser({ inline: true });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      this.#sentinelClients.delete(socket);
      this.#subscribers.delete(socket);
    });
    socket.on("data", (chunk) => {
      let commands: RespValue[];
      try {
        commands = parser.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const command of commands) {
        if (!Array.isArray(command) || command.length === 0) continue;
        const args = command.map((a) => String(a));
        const reply = this.#sentinelCommand(args, socket);
        if (reply !== null) socket.write(reply);
      }
    });
  }

  #sentinelCommand(args: string[], socket: net.Socket): Buffer | null {
    const name = this.snapshot.name;
    const verb = args[0]!.toLowerCase();
    switch (verb) {
      case "ping":
        return this.#subscribers.has(socket) ? encodeReply(["pong", ""]) : encodeStatus("PONG");
      case "quit":
        socket.end(encodeStatus("OK"));
        return null;
      case "client":
      case "auth":
      case "select":
        return encodeStatus("OK");
      case "subscribe":
      case "psubscribe": {
        this.#subscribers.add(socket);
        return Buffer.concat(args.slice(1).map((channel, i) => encodeReply([verb, channel, i + 1])));
      }
      case "unsubscribe":
      case "punsubscribe":
        this.#subscribers.delete(socket);
        return encodeReply([verb, args[1] ?? null, 0]);
      case "info":
        return encodeReply(
          `# Server\r\nredis_mode:sentinel\r\nhomeostat:1\r\n# Sentinel\r\nsentinel_masters:1\r\nmaster0:name=${name},status=${this.snapshot.primary === null ? "odown" : "ok"},address=${this.#addressText()},slaves=${this.snapshot.replicas.length},sentinels=1\r\n`,
        );
      case "role":
        return encodeReply(["sentinel", [name]]);
      case "sentinel":
        return this.#sentinelSubcommand(args.slice(1));
      default:
        return encodeReply({
          error: `ERR unknown command '${args[0]}' (a Homeostat Sentinel-compatible port)`,
        });
    }
  }

  #sentinelSubcommand(args: string[]): Buffer {
    const sub = (args[0] ?? "").toLowerCase();
    const asked = args[1];
    const name = this.snapshot.name;
    const known = asked === name;
    const unknown = encodeReply({ error: "ERR No such master with that name" });
    switch (sub) {
      case "get-master-addr-by-name": {
        const address = this.#announced();
        return encodeReply(known && address !== null ? [address.host, String(address.port)] : null);
      }
      case "sentinels":
        // Homeostat is the only "sentinel": there are no others to add to a client's list.
        return known ? encodeReply([]) : unknown;
      case "masters":
        return encodeReply([this.#masterFields()]);
      case "master":
        return known ? encodeReply(this.#masterFields()) : unknown;
      case "replicas":
      case "slaves":
        return known
          ? encodeReply(
              this.snapshot.replicas.map((r) => [
                "name",
                `${r.address}:${r.port}`,
                "ip",
                r.address,
                "port",
                String(r.port),
                "flags",
                "slave",
                "master-link-status",
                "ok",
                "master-host",
                this.snapshot.primary?.address ?? "?",
                "master-port",
                String(this.snapshot.primary?.port ?? 0),
              ]),
            )
          : unknown;
      case "myid":
        return encodeReply(`homeostat-${name}`);
      case "ckquorum":
        return known
          ? encodeStatus("OK 1 usable Sentinels. Quorum and failover authorization can be reached")
          : unknown;
      default:
        return encodeReply({ error: `ERR Unknown sentinel subcommand '${args[0] ?? ""}'` });
    }
  }

  #addressText(): string {
    const address = this.#announced();
    return address === null ? "none" : `${address.host}:${address.port}`;
  }

  /** What `SENTINEL master(s)` gives, as redis-py's parse_sentinel_state reads it. */
  #masterFields(): string[] {
    const address = this.#announced();
    const down = address === null;
    return [
      "name",
      this.snapshot.name,
      "ip",
      address?.host ?? "127.0.0.1",
      "port",
      String(address?.port ?? this.snapshot.port),
      "runid",
      `homeostat-${this.snapshot.name}`,
      "flags",
      down ? "master,o_down" : "master",
      "link-pending-commands",
      "0",
      "link-refcount",
      "1",
      "last-ping-sent",
      "0",
      "last-ok-ping-reply",
      "0",
      "last-ping-reply",
      "0",
      "down-after-milliseconds",
      "1000",
      "info-refresh",
      "0",
      "role-reported",
      "master",
      "role-reported-time",
      "0",
      "config-epoch",
      String(this.snapshot.epoch),
      "num-slaves",
      String(this.snapshot.replicas.length),
      "num-other-sentinels",
      "0",
      "quorum",
      "1",
      "failover-timeout",
      "60000",
      "parallel-syncs",
      "1",
    ];
  }
}

/** Every store's endpoint in this data-plane process, brought to match the snapshots. */
export class StoreEndpoints {
  readonly #stores = new Map<string, StoreEndpoint>();
  readonly #onEvent: EndpointEvents;

  constructor(onEvent: EndpointEvents = () => {}) {
    this.#onEvent = onEvent;
  }

  /**
   * Serve exactly `stores`: open new ones (both ports bound before anything changes), switch
   * targets, close those gone or moved to another port. A port that cannot be bound fails the
   * call; what was served keeps being served.
   */
  async apply(stores: readonly StoreSnapshot[]): Promise<void> {
    const opened: StoreEndpoint[] = [];
    try {
      for (const store of stores) {
        const current = this.#stores.get(store.name);
        if (current !== undefined && samePorts(current.snapshot, store)) continue;
        const endpoint = new StoreEndpoint(store, this.#onEvent);
        await endpoint.listen();
        opened.push(endpoint);
      }
    } catch (error) {
      await Promise.all(opened.map((e) => e.close()));
      throw error;
    }
    const wanted = new Set(stores.map((s) => s.name));
    for (const [name, endpoint] of this.#stores) {
      const next = stores.find((s) => s.name === name);
      if (!wanted.has(name) || (next !== undefined && !samePorts(endpoint.snapshot, next))) {
        this.#stores.delete(name);
        await endpoint.close();
      }
    }
    for (const endpoint of opened) this.#stores.set(endpoint.snapshot.name, endpoint);
    for (const store of stores) {
      const endpoint = this.#stores.get(store.name)!;
      if (opened.includes(endpoint)) continue;
      if (endpoint.update(store) === "stale") {
        this.#onEvent(
          "redis.endpoint-stale-snapshot",
          `${store.name}: a snapshot with epoch ${store.epoch} was ignored: the endpoint serves epoch ${endpoint.snapshot.epoch}`,
          { store: store.name, epoch: store.epoch, served: endpoint.snapshot.epoch },
        );
      }
    }
  }

  state(): Record<string, StoreEndpointState> {
    return Object.fromEntries([...this.#stores].map(([name, e]) => [name, e.state()]));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#stores.values()].map((e) => e.close()));
    this.#stores.clear();
  }
}

function sameTarget(a: Target | null, b: Target | null): boolean {
  if (a === null || b === null) return a === b;
  return a.member === b.member && a.address === b.address && a.port === b.port;
}

function samePorts(a: StoreSnapshot, b: StoreSnapshot): boolean {
  return a.port === b.port && (a.sentinel?.port ?? null) === (b.sentinel?.port ?? null);
}

/** SO_REUSEPORT: a planned data-plane restart's successor binds beside its predecessor. */
function listenOn(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port, reusePort: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
