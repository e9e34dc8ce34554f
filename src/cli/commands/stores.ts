/** `homeostat stores` and `homeostat switchover`: replicated stores (issue 16, docs/redis.md). */

import { HomeostatError } from "../../errors.ts";
import type { StoreStatus } from "../../stateful/redis/storeManager.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, stringOption } from "../args.ts";
import type { Command } from "../command.ts";
import { table } from "../format.ts";
import { OVERRIDE_HELP, overrideFields, overrideOptions } from "../override.ts";

/** One store as text: its primary, epoch, endpoint and every member with its role and lag. */
export function renderStore(store: StoreStatus): string {
  const sentinel =
    store.sentinel === null
      ? ""
      : `, sentinel :${store.sentinel.port} (announces ${store.sentinel.announce})`;
  const last =
    store.lastFailover === null
      ? "none"
      : `${store.lastFailover.kind} ${store.lastFailover.from} → ${store.lastFailover.to} at ${new Date(store.lastFailover.at).toISOString()} (epoch ${store.lastFailover.epoch}, ${store.lastFailover.lossBytes} bytes known lost)`;
  return [
    `${store.name} (redis): primary ${store.primary}, epoch ${store.epoch}, ${store.phase}; endpoint ${store.endpoint.address}:${store.endpoint.port} → ${store.endpoint.primary ?? "nothing (a promotion under way)"}${sentinel}`,
    table(
      ["MEMBER", "ZONE", "PORT", "PID", "ROLE", "FOLLOWS", "LINK", "OFFSET", "LAG"],
      store.members.map((m) => [
        m.name,
        m.zone,
        String(m.port),
        m.pid === null ? "-" : String(m.pid),
        m.process === "exited" ? "exited" : m.reachable ? (m.role ?? "?") : "unreachable",
        m.follows ?? "-",
        m.role === "replica" ? (m.linkUp ? "up" : "down") : "-",
        m.offset === null ? "-" : String(m.offset),
        m.lagBytes === null ? "-" : `${m.lagBytes} B`,
      ]),
    ),
    `last failover: ${last}${store.openIncident === null ? "" : `; open incident #${store.openIncident}`}`,
    ...store.held.map(
      (h) => `HELD ${h.kind} of ${h.target} since ${new Date(h.since).toISOString()}: ${h.reason}`,
    ),
  ].join("\n");
}

export const storesCommand: Command = {
  name: "stores",
  summary: "replicated stores: primary, epoch, members, replication lag",
  usage: `homeostat stores [STORE] [--json] [--api-port N]

Each store the fleet file declares (stores:): its primary and epoch (incremented by every
promotion), where its stable endpoint forwards now, its Sentinel-compatible port, and each member
with its zone, role, the member it follows, its replication link, offset and lag behind the
primary in bytes. See docs/redis.md.

Options:
  --json         print { stores: [...] } as JSON (GET /v1/stores)
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse("stores", argv, { json: { type: "boolean" }, ...apiPortOption }, 1);
    const body = (await apiClient(apiPort(values)).get("/v1/stores")) as { stores: StoreStatus[] };
    const name = positionals[0];
    const stores = name === undefined ? body.stores : body.stores.filter((s) => s.name === name);
    if (name !== undefined && stores.length === 0) {
      throw new HomeostatError(
        "HS_NOT_FOUND",
        `no store "${name}" (stores: ${body.stores.map((s) => s.name).join(", ") || "none"})`,
      );
    }
    if (values.json === true) io.out(JSON.stringify({ stores }, null, 2));
    else io.out(stores.length === 0 ? "no stores in this fleet" : stores.map(renderStore).join("\n\n"));
    return 0;
  },
};

export const switchoverCommand: Command = {
  name: "switchover",
  summary: "planned primary change of a store with no lost write (pause, catch up, swap)",
  usage: `homeostat switchover STORE [--to MEMBER] [--reason TEXT] [--override] [--json] [--api-port N]

Makes MEMBER (default: the best replica by priority, zone and offset) the primary of STORE:
writes are paused on the primary (CLIENT PAUSE WRITE), the replica catches up to the primary's
exact replication offset, then it is promoted at the next epoch, the old primary becomes its
replica and the stable endpoint switches (its connections to the old primary are closed). A
write is either applied before the pause and on the new primary, or fails without being applied:
none acknowledged is lost. If the replica does not catch up within 5 s, writes resume on the old
primary and nothing changes (HS_SWITCHOVER_NOT_CAUGHT_UP). Journaled and audited. While
automation is paused (\`homeostat pause\`) it is refused (HS_PAUSED) unless --override --reason.

Options:
  --to MEMBER    the replica to promote
${OVERRIDE_HELP}
  --json         print the result as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "switchover",
      argv,
      { to: { type: "string" }, ...overrideOptions, json: { type: "boolean" }, ...apiPortOption },
      1,
    );
    const store = positionals[0];
    if (store === undefined) {
      throw new HomeostatError("HS_USAGE", "switchover: missing STORE (see `homeostat switchover --help`)");
    }
    const to = stringOption(values, "to");
    const result = (await apiClient(apiPort(values)).post(
      `/v1/stores/${encodeURIComponent(store)}/switchover`,
      {
        ...(to === undefined ? {} : { to }),
        reason: "",
        ...overrideFields("switchover", values),
      },
    )) as { from: string; to: string; epoch: number; caughtUpMs: number; pausedMs: number };
    if (values.json === true) io.out(JSON.stringify(result, null, 2));
    else
      io.out(
        `${store}: ${result.to} is primary at epoch ${result.epoch} (was ${result.from}); caught up ${result.caughtUpMs} ms after writes paused, writes paused ${result.pausedMs} ms in all`,
      );
    return 0;
  },
};

/** The stores in `homeostat status`: one line each (primary, epoch, phase, each replica's lag). */
export function storeStatusLines(stores: readonly StoreStatus[] | undefined): string[] {
  return (stores ?? []).map((s) => {
    const replicas = s.members
      .filter((m) => m.name !== s.primary)
      .map((m) =>
        m.process === "exited" || !m.reachable
          ? `${m.name} ${m.process === "exited" ? "exited" : "unreachable"}`
          : `${m.name} ${m.role ?? "?"}${m.lagBytes === null ? "" : ` lag ${m.lagBytes} B`}`,
      )
      .join(", ");
    const held = s.held.map((h) => `; HELD ${h.kind} of ${h.target} (paused)`).join("");
    return `store ${s.name} (redis): ${s.phase}, primary ${s.primary}, epoch ${s.epoch}, endpoint :${s.endpoint.port} → ${s.endpoint.primary ?? "none"}; ${replicas}${s.openIncident === null ? "" : `; incident #${s.openIncident} open`}${held}`;
  });
}
