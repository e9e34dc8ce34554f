import { HomeostatError } from "../../errors.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, stringOption } from "../args.ts";
import type { Command } from "../command.ts";
import { clock } from "../format.ts";

interface PauseAnswer {
  by: string;
  reason: string;
  since: number;
}

export const pauseCommand: Command = {
  name: "pause",
  summary: "pause automation: no automated restart, rollback or failover until resume",
  usage: `homeostat pause --reason TEXT [--json] [--api-port N]

Pauses automation: from now on the controller starts no automated restart, rollback or zone
failover; each one it would have started is held instead — an \`automation.held\` event with the
reason, and the incident it concerns escalates. Actions under way finish (nothing is left
half-done); probes, incidents and the data plane go on as before. Manual actions (deploy,
rollback, failover, failback, restart, apply, weights, fault add, dataplane restart) are refused
while paused unless given --override with --reason, which is audited. \`homeostat status\` shows
the pause: by whom, why, since when, and what is held. The pause survives a controller restart.
\`homeostat resume\` ends it. Operator role. See docs/brakes.md.

Options:
  --reason TEXT  why (required: shown to everyone while automation is paused)
  --json         the answer as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse(
      "pause",
      argv,
      { reason: { type: "string" }, json: { type: "boolean" }, ...apiPortOption },
      0,
    );
    const reason = stringOption(values, "reason");
    if (reason === undefined || reason.trim() === "") {
      throw new HomeostatError(
        "HS_USAGE",
        "pause: --reason TEXT is required: it is shown to everyone while automation is paused",
      );
    }
    const answer = await apiClient(apiPort(values)).post<{ paused: PauseAnswer }>("/v1/pause", { reason });
    if (values.json === true) io.out(JSON.stringify(answer, null, 2));
    else {
      io.out(
        `automation paused by ${answer.paused.by} at ${clock(answer.paused.since)}: ${answer.paused.reason}`,
      );
      io.out("automated restarts, rollbacks and failovers are held; manual actions need --override --reason");
    }
    return 0;
  },
};

export const resumeCommand: Command = {
  name: "resume",
  summary: "resume automation after `homeostat pause`",
  usage: `homeostat resume [--reason TEXT] [--json] [--api-port N]

Ends the pause: automated restarts, rollbacks and failovers may start again, and what was held is
decided again at once (still under the rate limits and the blast radius). Refused when automation
is not paused. Operator role. See docs/brakes.md.

Options:
  --reason TEXT  why (recorded with the event and in the audit trail)
  --json         the answer as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse(
      "resume",
      argv,
      { reason: { type: "string" }, json: { type: "boolean" }, ...apiPortOption },
      0,
    );
    const reason = stringOption(values, "reason");
    const answer = await apiClient(apiPort(values)).post<{ ended: PauseAnswer }>(
      "/v1/resume",
      reason === undefined ? {} : { reason },
    );
    if (values.json === true) io.out(JSON.stringify(answer, null, 2));
    else {
      io.out(
        `automation resumed (it was paused by ${answer.ended.by} since ${clock(answer.ended.since)}: ${answer.ended.reason})`,
      );
    }
    return 0;
  },
};
