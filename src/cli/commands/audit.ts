import type { AuditAnswer } from "../../server/routes/authRoutes.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, positiveIntOption } from "../args.ts";
import type { Command } from "../command.ts";
import { duration, table } from "../format.ts";
import { dateTime } from "./token.ts";

export const auditCommand: Command = {
  name: "audit",
  summary: "who changed what through the API, refused attempts included (admin)",
  usage: `homeostat audit [--limit N] [--after ID] [--json]

Every POST, PUT, PATCH and DELETE the API received, oldest first: when, which token and role,
the route and its arguments (token secrets never recorded), the reason given, and the result
(status and error code) — refused attempts (no token, a weaker role, bad input) included.
Needs an admin token (the one \`homeostat up\` wrote is found automatically).

Options:
  --limit N      the newest N entries (default 50)
  --after ID     the entries after ID instead (paging)
  --json         print JSON
  --token T      the token to call the API with (default: $HOMEOSTAT_TOKEN, else up's admin token)
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse(
      "audit",
      argv,
      { limit: { type: "string" }, after: { type: "string" }, json: { type: "boolean" }, ...apiPortOption },
      0,
    );
    const params = new URLSearchParams({ limit: String(positiveIntOption(values, "limit", 50)) });
    if (typeof values.after === "string") params.set("after", String(positiveIntOption(values, "after", 1)));
    const { audit } = await apiClient(apiPort(values)).get<{ audit: AuditAnswer[] }>(`/v1/audit?${params}`);
    io.out(values.json === true ? JSON.stringify(audit, null, 2) : renderAudit(audit));
    return 0;
  },
};

/** The audit table: one line per change asked of the API. */
export function renderAudit(rows: AuditAnswer[]): string {
  if (rows.length === 0) return "no audited changes";
  return table(
    ["ID", "AT", "WHO", "ROLE", "REQUEST", "STATUS", "CODE", "TOOK", "REASON"],
    rows.map((r) => [
      String(r.id),
      dateTime(r.at),
      r.tokenName,
      r.role ?? "-",
      `${r.method} ${r.url}`,
      String(r.status),
      r.errorCode ?? "-",
      duration(r.durationMs),
      r.reason ?? "",
    ]),
  );
}
