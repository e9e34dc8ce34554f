import { type Inspection, inspectDataPlane } from "../../dataplane/inspect.ts";
import { HomeostatError } from "../../errors.ts";
import type { DataPlaneStatusAnswer } from "../../server/routes/schemas.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, stateDirOption } from "../args.ts";
import type { Command } from "../command.ts";
import { ago } from "../format.ts";
import { overrideFields, overrideOptions } from "../override.ts";

export const dataPlaneCommand: Command = {
  name: "dataplane",
  summary: "the data-plane process: where traffic is served from, and a planned restart",
  usage: `homeostat dataplane [status] [FILE] [--state-dir DIR] [--json] [--api-port N]
homeostat dataplane restart [--reason TEXT] [--override] [--json] [--api-port N]

status   which process serves the service ports, the snapshot version it serves (and how old
         it is), whether it is connected to the controller, how often it was restarted.
         When no controller answers (it crashed, or is being restarted), give the fleet FILE
         or --state-dir: the data plane itself is asked, through its feed socket, and says
         since when it has had no controller.
restart  planned restart (also how a new Homeostat version takes over the traffic): the data
         plane starts a successor that inherits the listening sockets, so no connection is
         refused; the old process answers its open connections with "connection: close",
         drains them and exits. Waits until the successor serves.

Options:
  --reason TEXT  recorded in the journal with the restart
  --override     restart although automation is paused (\`homeostat pause\`); needs --reason
  --json         print the answer as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "dataplane",
      argv,
      {
        json: { type: "boolean" },
        ...overrideOptions,
        "state-dir": { type: "string" },
        ...apiPortOption,
      },
      2,
    );
    const action = positionals[0] ?? "status";
    const client = apiClient(apiPort(values));
    if (action === "status" && !(await client.alive())) {
      const stateDir = stateDirOption(values, positionals[1]);
      if (stateDir === undefined) {
        throw new HomeostatError(
          "HS_CONTROLLER_UNREACHABLE",
          `no controller answers on ${client.base}. To ask the data plane itself, give the fleet FILE or --state-dir DIR.`,
        );
      }
      const inspection = await inspectDataPlane(stateDir);
      io.out(
        values.json === true
          ? JSON.stringify({ ...inspection, controllerAnswers: false }, null, 2)
          : renderInspection(inspection, Date.now()),
      );
      return 0;
    }
    if (action === "status") {
      const { dataPlane } = await client.get<{ dataPlane: DataPlaneStatusAnswer }>("/v1/dataplane");
      io.out(
        values.json === true ? JSON.stringify(dataPlane, null, 2) : renderDataPlane(dataPlane, Date.now()),
      );
      return 0;
    }
    if (action === "restart") {
      const result = await client.post<{ from: number; to: number; dataPlane: DataPlaneStatusAnswer }>(
        "/v1/dataplane/restart",
        { reason: "", ...overrideFields("dataplane restart", values) },
      );
      io.out(
        values.json === true
          ? JSON.stringify(result, null, 2)
          : `homeostat: the data plane was handed over from pid ${result.from} to pid ${result.to}`,
      );
      return 0;
    }
    throw new HomeostatError("HS_USAGE", `dataplane: unknown action ${action} (status or restart)`);
  },
};

/** What the data plane says of itself when no controller answers. */
export function renderInspection(inspection: Inspection, now: number): string {
  const d = inspection.identity;
  const lost =
    d.controllerLostAt === null
      ? "a controller is attached"
      : `NO CONTROLLER since ${ago(d.controllerLostAt, now)}`;
  const issued = d.appliedIssuedAt === null ? "" : `, issued ${ago(d.appliedIssuedAt, now)}`;
  const services = Object.entries(inspection.services).map(([name, state]) => {
    const endpoints = Array.isArray(state.endpoints)
      ? (state.endpoints as { ejected?: boolean; draining?: boolean }[])
      : [];
    const active = endpoints.filter((e) => e.draining !== true);
    const ejected = active.filter((e) => e.ejected === true).length;
    return `  ${name}: port ${String(state.port)}, ${active.length} endpoint(s), ${ejected} ejected`;
  });
  return [
    `data plane: pid ${d.pid}, ${lost}; serving snapshot v${d.appliedVersion} (from ${d.source}${issued}); generation ${d.generation}`,
    ...services,
  ].join("\n");
}

/** One line on the data plane, as `status` and `dataplane` print it. */
export function renderDataPlane(d: DataPlaneStatusAnswer, now: number): string {
  if (d.mode === "in-process") return "data plane: inside the controller (--data-plane in-process)";
  const link = d.connected
    ? "connected"
    : `NOT CONNECTED${d.controllerLostAt === null ? "" : ` (no controller since ${ago(d.controllerLostAt, now)})`}`;
  const age = d.appliedIssuedAt === null ? "" : `, issued ${ago(d.appliedIssuedAt, now)}`;
  const lag = d.pushedVersion > d.appliedVersion ? `, v${d.pushedVersion} pending` : "";
  return `data plane: pid ${d.pid ?? "-"}, ${link}, serving snapshot v${d.appliedVersion}${age}${lag}; generation ${d.generation}, ${d.restarts} crash restart(s)`;
}
