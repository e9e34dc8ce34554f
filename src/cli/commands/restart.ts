import { HomeostatError } from "../../errors.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { Command } from "../command.ts";
import { OVERRIDE_HELP, overrideFields, overrideOptions } from "../override.ts";

export const restartCommand: Command = {
  name: "restart",
  summary: "restart one instance by hand (a manual action: --override while paused)",
  usage: `homeostat restart INSTANCE [--reason TEXT] [--override] [--json] [--api-port N]

Restarts INSTANCE (e.g. api-1): a running one is taken out of the data plane, drained, stopped and
started again; one that is not running — held by an automation brake, or waiting out its
backoff — is started now. A person's action: it does not count against the automated-restart
rate limit, and while automation is paused (\`homeostat pause\`) it needs --override with
--reason. Operator role.

Options:
${OVERRIDE_HELP}
  --json         the answer as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "restart",
      argv,
      { ...overrideOptions, json: { type: "boolean" }, ...apiPortOption },
      1,
    );
    const instance = positionals[0];
    if (instance === undefined)
      throw new HomeostatError("HS_USAGE", "restart: missing INSTANCE (e.g. api-1)");
    const answer = await apiClient(apiPort(values)).post<{ instance: string; action: string }>(
      `/v1/instances/${encodeURIComponent(instance)}/restart`,
      overrideFields("restart", values),
    );
    if (values.json === true) io.out(JSON.stringify(answer, null, 2));
    else
      io.out(
        answer.action === "replacing"
          ? `${instance}: being drained, stopped and started again (watch: homeostat events -f)`
          : `${instance}: starting (watch: homeostat events -f)`,
      );
    return 0;
  },
};
