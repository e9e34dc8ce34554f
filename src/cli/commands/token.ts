import { HomeostatError } from "../../errors.ts";
import type { TokenAnswer } from "../../server/routes/authRoutes.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, stringOption } from "../args.ts";
import type { Command } from "../command.ts";
import { table } from "../format.ts";

const ROLES = ["viewer", "operator", "admin"];

/** A date and time for listings: 2026-12-06 14:03:22 (local). */
export function dateTime(epochMs: number | null): string {
  if (epochMs === null) return "-";
  const d = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export const tokenCommand: Command = {
  name: "token",
  summary: "create, list and revoke API tokens (admin)",
  usage: `homeostat token create --name NAME --role viewer|operator|admin [--json]
homeostat token list [--all] [--json]
homeostat token revoke ID|NAME

Every API call needs a token (Authorization: Bearer hs_…). Roles: viewer reads; operator also
deploys, rolls back, fails over, injects faults and restarts the data plane; admin also manages
tokens, reads the audit trail, shuts the controller down and forces rollbacks and failovers.
\`create\` prints the token once: it is stored only as a hash and cannot be shown again.
\`revoke\` refuses to revoke the last live admin token. These commands need an admin token:
the one \`homeostat up\` wrote to <state dir>/admin-token is found automatically.

Options:
  --name NAME    a name for people and the audit trail (unique among live tokens)
  --role ROLE    viewer, operator or admin
  --all          list revoked tokens too
  --json         print JSON
  --token T      the token to call the API with (default: $HOMEOSTAT_TOKEN, else up's admin token)
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "token",
      argv,
      {
        name: { type: "string" },
        role: { type: "string" },
        all: { type: "boolean" },
        json: { type: "boolean" },
        ...apiPortOption,
      },
      2,
    );
    const [verb, target] = positionals;
    const client = apiClient(apiPort(values));
    switch (verb) {
      case "create": {
        const name = stringOption(values, "name");
        const role = stringOption(values, "role");
        if (name === undefined || role === undefined) {
          throw new HomeostatError("HS_USAGE", "token create: --name NAME and --role ROLE are both needed");
        }
        if (!ROLES.includes(role)) {
          throw new HomeostatError(
            "HS_USAGE",
            `token create: --role must be viewer, operator or admin, not "${role}"`,
          );
        }
        const created = await client.post<{ token: TokenAnswer; secret: string }>("/v1/tokens", {
          name,
          role,
        });
        if (values.json === true) {
          io.out(JSON.stringify(created, null, 2));
          return 0;
        }
        io.out(
          `token "${created.token.name}" (${created.token.role}, id ${created.token.id}) created. It is shown only now:`,
        );
        io.out(created.secret);
        io.out(
          "Give it to the client as HOMEOSTAT_TOKEN=… (the CLI), or as the header Authorization: Bearer ….",
        );
        return 0;
      }
      case "list": {
        const { tokens } = await client.get<{ tokens: TokenAnswer[] }>(
          `/v1/tokens${values.all === true ? "?revoked=true" : ""}`,
        );
        if (values.json === true) io.out(JSON.stringify(tokens, null, 2));
        else io.out(renderTokens(tokens));
        return 0;
      }
      case "revoke": {
        if (target === undefined)
          throw new HomeostatError("HS_USAGE", "token revoke: which token? (ID or NAME)");
        const id = /^\d+$/.test(target) ? Number(target) : await idOfLiveToken(client, target);
        const { token } = await client.delete<{ token: TokenAnswer }>(`/v1/tokens/${id}`);
        if (values.json === true) io.out(JSON.stringify(token, null, 2));
        else io.out(`token "${token.name}" (${token.role}, id ${token.id}) revoked`);
        return 0;
      }
      default:
        throw new HomeostatError(
          "HS_USAGE",
          `token: expected create, list or revoke${verb === undefined ? "" : `, not "${verb}"`} (see \`homeostat token --help\`)`,
        );
    }
  },
};

async function idOfLiveToken(client: ReturnType<typeof apiClient>, name: string): Promise<number> {
  const { tokens } = await client.get<{ tokens: TokenAnswer[] }>("/v1/tokens");
  const token = tokens.find((t) => t.name === name);
  if (token === undefined) throw new HomeostatError("HS_NOT_FOUND", `no live token named "${name}"`);
  return token.id;
}

/** The token table: never a secret (the API has none to give). */
export function renderTokens(tokens: TokenAnswer[]): string {
  if (tokens.length === 0) return "no tokens";
  return table(
    ["ID", "NAME", "ROLE", "CREATED", "BY", "LAST USED", "REVOKED"],
    tokens.map((t) => [
      String(t.id),
      t.name,
      t.role,
      dateTime(t.createdAt),
      t.createdBy,
      dateTime(t.lastUsedAt),
      dateTime(t.revokedAt),
    ]),
  );
}
