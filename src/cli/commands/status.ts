import type { StatusDocument } from "../../server/statusView.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { Command } from "../command.ts";
import { ago, table } from "../format.ts";

export const statusCommand: Command = {
  name: "status",
  summary: "services and instances: health, release, zone, failures",
  usage: `homeostat status [--json] [--api-port N]

Asks the running controller for the fleet's state: per service its desired release, ready
count and warnings (mixed releases, crash loops, missing capacity); per instance its state
(ready, starting, unready, unhealthy, exited, stopping), release, zone, host, port, pid
and the reason for its state.

Options:
  --json         print the status document as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse("status", argv, { json: { type: "boolean" }, ...apiPortOption }, 0);
    const status = await apiClient(apiPort(values)).get<StatusDocument>("/v1/status");
    if (values.json === true) {
      io.out(JSON.stringify(status, null, 2));
      return 0;
    }
    io.out(renderStatus(status));
    return 0;
  },
};

export function renderStatus(status: StatusDocument): string {
  const now = status.controller.now;
  const lines: string[] = [
    `fleet ${status.fleet.name} (${status.fleet.file}) — controller pid ${status.controller.pid}, up ${ago(status.controller.startedAt, now).replace(" ago", "")}, ${status.openIncidents} open incident(s)`,
    "",
  ];
  for (const service of status.services) {
    lines.push(
      `${service.name}: ${service.state}, ${service.ready}/${service.replicas} ready, release ${service.release}`,
    );
    for (const warning of service.warnings) lines.push(`  ! ${warning}`);
    const rows = service.instances.map((i) => [
      i.name,
      i.state,
      i.release ?? "-",
      i.zone,
      i.host,
      String(i.port),
      i.pid === null ? "-" : String(i.pid),
      i.consecutiveFailures > 0 ? String(i.consecutiveFailures) : "0",
      i.since === null ? "-" : ago(i.since, now),
      i.reason,
    ]);
    lines.push(
      table(
        ["  INSTANCE", "STATE", "RELEASE", "ZONE", "HOST", "PORT", "PID", "FAILS", "SINCE", "REASON"],
        rows.map((r) => [`  ${r[0]}`, ...r.slice(1)]),
      ),
      "",
    );
  }
  return lines.join("\n").trimEnd();
}
