import { HomeostatError } from "../../errors.ts";
import type { IncidentAnswer, IncidentWithTimelineAnswer } from "../../server/routes/schemas.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, positiveIntOption, stringOption } from "../args.ts";
import type { Command } from "../command.ts";
import { clock, duration, table } from "../format.ts";

export const incidentsCommand: Command = {
  name: "incidents",
  summary: "detected failures with their timeline and TTD/TTR",
  usage: `homeostat incidents [ID] [--json] [--status open|closed] [--service NAME] [--limit N] [--api-port N]

Without ID: the most recent incidents, newest first, with time-to-detect (TTD: from the
last good observation to detection), time-to-recover (TTR: from detection to a ready
replacement) and time-to-stabilize (TTS: detection to closing, after the instance stayed
ready for the stabilization window).
With ID: one incident with its whole timeline.

Options:
  --status S      open or closed
  --service NAME  only this service
  --limit N       how many (default 20)
  --json          print JSON
  --api-port N    controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "incidents",
      argv,
      {
        json: { type: "boolean" },
        status: { type: "string" },
        service: { type: "string" },
        limit: { type: "string" },
        ...apiPortOption,
      },
      1,
    );
    const client = apiClient(apiPort(values));
    const id = positionals[0];
    if (id !== undefined) {
      if (!/^\d+$/.test(id))
        throw new HomeostatError("HS_USAGE", `incidents: ID must be a number, got "${id}"`);
      const { incident } = await client.get<{ incident: IncidentWithTimelineAnswer }>(`/v1/incidents/${id}`);
      io.out(values.json === true ? JSON.stringify(incident, null, 2) : renderIncident(incident));
      return 0;
    }
    const status = stringOption(values, "status");
    if (status !== undefined && status !== "open" && status !== "closed") {
      throw new HomeostatError("HS_USAGE", `--status: expected open or closed, got "${status}"`);
    }
    const params = new URLSearchParams({ limit: String(positiveIntOption(values, "limit", 20)) });
    if (status) params.set("status", status);
    const service = stringOption(values, "service");
    if (service) params.set("service", service);
    const { incidents } = await client.get<{ incidents: IncidentAnswer[] }>(`/v1/incidents?${params}`);
    if (values.json === true) {
      io.out(JSON.stringify(incidents, null, 2));
      return 0;
    }
    if (incidents.length === 0) {
      io.out("no incidents");
      return 0;
    }
    io.out(
      table(
        ["ID", "STATUS", "INSTANCE", "REASON", "DETECTED", "TTD", "TTR", "TTS", "DETAIL"],
        incidents.map((i) => [
          String(i.id),
          i.status,
          i.instance,
          i.reason,
          clock(i.detectedAt),
          duration(i.ttdMs),
          duration(i.ttrMs),
          duration(i.closedAt === null ? null : i.closedAt - i.detectedAt),
          i.detail,
        ]),
      ),
    );
    return 0;
  },
};

function renderIncident(i: IncidentWithTimelineAnswer): string {
  const lines = [
    `incident ${i.id} — ${i.status} — ${i.instance} (${i.service}) — reason ${i.reason}`,
    `TTD ${duration(i.ttdMs)}   TTR ${duration(i.ttrMs)}   TTS ${duration(i.closedAt === null ? null : i.closedAt - i.detectedAt)}`,
    "",
    table(
      ["AT", "+", "PHASE", "DETAIL"],
      i.timeline.map((t) => [clock(t.at), `+${duration(t.at - i.detectedAt)}`, t.phase, t.detail]),
    ),
  ];
  return lines.join("\n");
}
