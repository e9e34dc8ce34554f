import type { ServiceTrafficAnswer } from "../../server/routes/schemas.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { Command } from "../command.ts";
import { table } from "../format.ts";

export const trafficCommand: Command = {
  name: "traffic",
  summary: "the data plane: endpoints, ejections, priorities, weights, load",
  usage: `homeostat traffic [--json] [--api-port N]

Per service with a front port: its engine (embedded, or haproxy with the managed HAProxy's
pid and reloads), which instances receive traffic, their zone and priority,
requests in flight against their concurrency limit (adaptive when enabled), passive
outlier-detection state (ejected until when, consecutive failures), panic state and mode,
the release weights, and admission (queue, shed) statistics.

Options:
  --json         print the full state as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse("traffic", argv, { json: { type: "boolean" }, ...apiPortOption }, 0);
    const { services } = await apiClient(apiPort(values)).get<{
      services: Record<string, ServiceTrafficAnswer>;
    }>("/v1/traffic");
    if (values.json === true) {
      io.out(JSON.stringify(services, null, 2));
      return 0;
    }
    const names = Object.keys(services);
    if (names.length === 0) {
      io.out("no service of this fleet has a traffic listener (set `port` on a service)");
      return 0;
    }
    const now = Date.now();
    for (const name of names) {
      const s = services[name]!;
      const weights =
        s.weights === null
          ? "none (current release)"
          : Object.entries(s.weights)
              .map(([v, w]) => `${v}=${w}`)
              .join(" ");
      const engine =
        s.engine === "haproxy"
          ? ` [haproxy pid ${s.haproxy?.pid ?? "-"}, ${s.haproxy?.reloads ?? 0} reload(s)${s.haproxy?.lastError ? `, last error: ${s.haproxy.lastError}` : ""}]`
          : "";
      io.out(
        `${name}: 127.0.0.1:${s.port}${engine} — ${s.healthy}/${s.members} healthy${s.panic ? `, PANIC (${s.panicMode})` : ""}, ${s.requestsInFlight} in flight, weights ${weights}`,
      );
      io.out(
        table(
          ["  INSTANCE", "RELEASE", "ZONE", "PRIO", "IN-FLIGHT", "LIMIT", "STATE", "FAILS"],
          s.endpoints.map((e) => [
            `  ${e.instance}`,
            e.release,
            e.zone,
            e.priority === null ? "-" : String(e.priority),
            String(e.inFlight),
            e.adaptiveLimit === null ? String(e.limit) : `${e.adaptiveLimit}/${e.limit}`,
            e.draining
              ? "draining"
              : e.ejected
                ? `ejected ${e.ejectedUntil === null ? "" : `${Math.max(0, Math.round((e.ejectedUntil - now) / 1000))}s`}`.trim()
                : "serving",
            String(e.consecutiveFailures),
          ]),
        ),
      );
      io.out("");
    }
    return 0;
  },
};
