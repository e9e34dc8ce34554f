import type { FailoverStatus } from "../../controller/failoverManager.ts";
import { HomeostatError } from "../../errors.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, stringOption } from "../args.ts";
import type { CliIo, Command } from "../command.ts";
import { table } from "../format.ts";
import { OVERRIDE_HELP, overrideFields, overrideOptions } from "../override.ts";

const pct = (share: number): string =>
  Number.isFinite(share) ? `${Math.round(share * 1000) / 10} %` : "∞ %";

/** The zones block shared by `failover`, `failback` and `zones`. */
export function renderZones(status: FailoverStatus): string {
  const lines = [
    table(
      ["ZONE", "HEALTH", "TRAFFIC", "PHASE", "WHY"],
      status.zones.map((z) => [
        z.zone,
        `${z.state} (${z.healthyInstances}/${z.totalInstances})`,
        pct(z.share),
        z.shift ? `${z.shift.phase} (${z.shift.trigger})` : "-",
        z.shift ? z.shift.reason : z.reason,
      ]),
    ),
  ];
  for (const s of status.services) {
    const shed =
      s.shed.sheddable > 0 || s.shed.default > 0
        ? `shedding sheddable ${pct(s.shed.sheddable)}, default ${pct(s.shed.default)}`
        : "no shedding";
    const added = s.addedInstances.length > 0 ? `; added ${s.addedInstances.join(", ")}` : "";
    lines.push(
      `${s.service}: demand ${s.demandRps} rps on ${s.servingCapacityRps} rps serving (${pct(s.projectedUtilization)}, ceiling ${pct(s.ceiling)}); ${shed}${added}`,
    );
    for (const r of s.reasons) lines.push(`  - ${r}`);
  }
  lines.push(`automatic evacuation: ${status.automatic ? "on" : "off (fleet file `failover.automatic`)"}`);
  return lines.join("\n");
}

function printResult(io: CliIo, json: boolean, body: { failover: FailoverStatus }, headline: string): void {
  if (json) io.out(JSON.stringify(body, null, 2));
  else io.out(`${headline}\n\n${renderZones(body.failover)}`);
}

export const failoverCommand: Command = {
  name: "failover",
  summary: "evacuate a zone: its traffic moves to the other zones in capacity-checked steps",
  usage: `homeostat failover ZONE [--reason TEXT] [--override] [--json] [--api-port N]

Moves ZONE's traffic to the other zones. A zone that is down loses its traffic at once (nothing
there serves); one that still serves loses it in steps (failover.stepPercent every
failover.stepInterval). While a zone is shifted, the survivors are kept under their ceiling
(capacity.targetUtilization): instances are added in the other zones first (spare slots, up to
capacity.maxReplicas), and until they are ready the minimum is shed — sheddable traffic, then
default, never critical. See the plan first with \`homeostat plan failover ZONE\`.

Safety rules: never every zone (no override); one evacuation at a time and a minimum interval
after an automated one (--override with --reason steps over these two, and is audited).
Traffic comes back with \`homeostat failback ZONE\`.

Options:
  --reason TEXT  why (journaled; required with --override)
  --override     step over one-at-a-time and min-interval, and a pause of automation (admin)
  --json         print the shift and the zones as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "failover",
      argv,
      {
        reason: { type: "string" },
        override: { type: "boolean" },
        json: { type: "boolean" },
        ...apiPortOption,
      },
      1,
    );
    const zone = positionals[0];
    if (zone === undefined)
      throw new HomeostatError("HS_USAGE", "failover: missing ZONE (see `homeostat failover --help`)");
    const reason = stringOption(values, "reason") ?? "";
    const override = values.override === true;
    if (override && reason.trim() === "") {
      throw new HomeostatError("HS_USAGE", "failover: --override needs --reason (it is audited)");
    }
    const body = (await apiClient(apiPort(values)).post("/v1/failover", {
      domain: zone,
      reason,
      override,
    })) as {
      shift: { share: number; phase: string };
      failover: FailoverStatus;
    };
    printResult(
      io,
      values.json === true,
      body,
      `${zone}: ${body.shift.phase}, keeps ${pct(body.shift.share)} of its traffic`,
    );
    return 0;
  },
};

export const failbackCommand: Command = {
  name: "failback",
  summary: "bring a zone's traffic back, gradually, once it stays healthy",
  usage: `homeostat failback ZONE [--reason TEXT] [--override] [--json] [--api-port N]

Asks for ZONE's traffic back. It returns only after the zone stays healthy for
failover.stabilization, then in steps of failover.stepPercent every failover.stepInterval; if the
zone fails again on the way its traffic drops to nothing at once and the window starts over.
Zones evacuated automatically fail back by themselves; this is for manual evacuations (or to
record why).

Options:
${OVERRIDE_HELP}
  --json         print the shift and the zones as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "failback",
      argv,
      { ...overrideOptions, json: { type: "boolean" }, ...apiPortOption },
      1,
    );
    const zone = positionals[0];
    if (zone === undefined)
      throw new HomeostatError("HS_USAGE", "failback: missing ZONE (see `homeostat failback --help`)");
    const body = (await apiClient(apiPort(values)).post("/v1/failback", {
      domain: zone,
      reason: "",
      ...overrideFields("failback", values),
    })) as { shift: { share: number; phase: string }; failover: FailoverStatus };
    printResult(
      io,
      values.json === true,
      body,
      `${zone}: failback requested; traffic returns after the stabilization window (now ${pct(body.shift.share)})`,
    );
    return 0;
  },
};

export const zonesCommand: Command = {
  name: "zones",
  summary: "zone health, traffic shares, shedding and added capacity",
  usage: `homeostat zones [--json] [--api-port N]

Shows each zone's health (the share of its instances failing: not ready, ejected by the data
plane, or failing the zone probe), the share of its traffic it keeps, and whether it is being
evacuated or failing back; while a zone is shifted, each service's demand against the capacity
still serving, what is shed and what was added.

Options:
  --json         print the document as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse("zones", argv, { json: { type: "boolean" }, ...apiPortOption }, 0);
    const status = (await apiClient(apiPort(values)).get("/v1/failover")) as FailoverStatus;
    io.out(values.json === true ? JSON.stringify(status, null, 2) : renderZones(status));
    return 0;
  },
};
