import { HomeostatError } from "../../errors.ts";
import { printable } from "../../lib/printable.ts";
import type { EventAnswer } from "../../server/routes/schemas.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, positiveIntOption, stringOption } from "../args.ts";
import type { Command } from "../command.ts";
import { clock } from "../format.ts";

export const eventsCommand: Command = {
  name: "events",
  summary: "what the controller saw and did, with reasons",
  usage: `homeostat events [--json] [--follow] [--limit N] [--service NAME] [--api-port N]

Prints the controller's events, oldest first: instance starts, exits, health changes,
decisions (with their typed reason) and incident transitions.

Options:
  --follow, -f    keep printing new events until interrupted
  --limit N       how many recent events to print first (default 50)
  --service NAME  only events of this service
  --json          one JSON object per line (JSON Lines), also with --follow
  --api-port N    controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse(
      "events",
      argv,
      {
        json: { type: "boolean" },
        follow: { type: "boolean", short: "f" },
        limit: { type: "string" },
        service: { type: "string" },
        ...apiPortOption,
      },
      0,
    );
    const client = apiClient(apiPort(values));
    const limit = positiveIntOption(values, "limit", 50);
    const service = stringOption(values, "service");
    const filter = service === undefined ? "" : `&service=${encodeURIComponent(service)}`;
    const print = (e: EventAnswer) => io.out(values.json === true ? JSON.stringify(e) : renderEvent(e));
    const first = await client.get<{ events: EventAnswer[] }>(`/v1/events?limit=${limit}${filter}`);
    first.events.forEach(print);
    if (values.follow !== true) return 0;
    let after = first.events.at(-1)?.seq ?? 0;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      let next: { events: EventAnswer[] };
      try {
        next = await client.get<{ events: EventAnswer[] }>(`/v1/events?after=${after}&limit=1000${filter}`);
      } catch (error) {
        if (error instanceof HomeostatError && error.code === "HS_CONTROLLER_UNREACHABLE") {
          io.err("homeostat: the controller went away; stopped following");
          return 0;
        }
        throw error;
      }
      next.events.forEach(print);
      after = next.events.at(-1)?.seq ?? after;
    }
  },
};

export function renderEvent(e: EventAnswer): string {
  // Zone-level events (failover, failback, N−1) name their zone in `data`.
  const zone = (e.data as { zone?: unknown } | null | undefined)?.zone;
  const who = e.instance ?? e.service ?? (typeof zone === "string" ? zone : "-");
  // The message may carry an operator's reason or a process's output: never raw to the terminal.
  return printable(`${clock(e.at)}  ${e.type.padEnd(20)} ${who.padEnd(14)} [${e.reason}] ${e.message}`);
}
