import type { StatusAnswer } from "../../server/routes/schemas.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { Command } from "../command.ts";
import { clock, table } from "../format.ts";

/** One revision as `GET /v1/revisions` lists it. */
interface RevisionLine {
  number: number;
  hash: string;
  file: string;
  who: string;
  reason: string | null;
  at: number;
  state: "applying" | "applied" | "failed";
  error: string | null;
  summary: string;
}

export const historyCommand: Command = {
  name: "history",
  summary: "spec revisions: number, when, who, why, hash, state and what each changed",
  usage: `homeostat history [--json] [--limit N] [--api-port N]

Lists the fleet's spec revisions, newest first: every fleet file the controller was brought up
with (revision 1, by "homeostat up") or applied, with when, who (the token's name), the reason
given, the file's content hash, its state (applying, applied, failed — with why) and a summary of
its diff from the revision before ("1 scale, 2 live"). \`GET /v1/revisions/N\` has a revision's full
text and diff. See docs/operations.md, "Diff and history".

Options:
  --limit N      at most N revisions (default 100)
  --json         print {"revisions": [...]} as the API answers it
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse(
      "history",
      argv,
      { json: { type: "boolean" }, limit: { type: "string" }, ...apiPortOption },
      0,
    );
    const limit = values.limit === undefined ? "" : `?limit=${encodeURIComponent(String(values.limit))}`;
    const doc = await apiClient(apiPort(values)).get<{ revisions: RevisionLine[] }>(`/v1/revisions${limit}`);
    if (values.json === true) {
      io.out(JSON.stringify(doc, null, 2));
      return 0;
    }
    if (doc.revisions.length === 0) {
      io.out("no spec revision recorded yet");
      return 0;
    }
    io.out(
      table(
        ["REV", "WHEN", "WHO", "STATE", "HASH", "REASON", "CHANGES"],
        doc.revisions.map((r) => [
          String(r.number),
          clock(r.at),
          r.who,
          r.state === "failed" && r.error !== null ? `failed: ${r.error}` : r.state,
          r.hash.slice(0, 12),
          r.reason ?? "-",
          r.summary,
        ]),
      ),
    );
    return 0;
  },
};

/**
 * Lines saying how the fleet file on disk compares with the applied revision (drift), for
 * `status` and `check`; none when it is the same file or no revision is applied.
 */
export function renderSpecDrift(spec: StatusAnswer["spec"]): string[] {
  if (spec === undefined) return [];
  const pending = spec.applying === null ? [] : [`  revision ${spec.applying} is being applied`];
  switch (spec.fileOnDisk) {
    case "same":
      return pending;
    case "differs":
      return [
        `! fleet file changed since revision ${spec.revision}: run \`homeostat diff ${spec.file}\``,
        ...pending,
      ];
    case "missing":
      return [`! fleet file ${spec.file} of revision ${spec.revision} is missing`, ...pending];
    default:
      return [`! fleet file ${spec.file} of revision ${spec.revision} cannot be read`, ...pending];
  }
}
