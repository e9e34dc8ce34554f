/** The `homeostat` command line: dispatch, help, and the mapping from errors to exit codes. */

import { readFileSync } from "node:fs";
import { exitCodeFor, HomeostatError } from "../errors.ts";
import type { CliIo, Command } from "./command.ts";
import { applyCommand } from "./commands/apply.ts";
import { auditCommand } from "./commands/audit.ts";
import { checkCommand } from "./commands/check.ts";
import { dataPlaneCommand } from "./commands/dataplane.ts";
import { diffCommand } from "./commands/diff.ts";
import { downCommand } from "./commands/down.ts";
import { eventsCommand } from "./commands/events.ts";
import { failbackCommand, failoverCommand, zonesCommand } from "./commands/failover.ts";
import { faultCommand } from "./commands/fault.ts";
import { historyCommand } from "./commands/history.ts";
import { incidentsCommand } from "./commands/incidents.ts";
import { initCommand } from "./commands/init.ts";
import { pauseCommand, resumeCommand } from "./commands/pause.ts";
import { deployCommand, planCommand, releasesCommand, rollbackCommand } from "./commands/releases.ts";
import { restartCommand } from "./commands/restart.ts";
import { schemaCommand } from "./commands/schema.ts";
import { statusCommand } from "./commands/status.ts";
import { storesCommand, switchoverCommand } from "./commands/stores.ts";
import { tokenCommand } from "./commands/token.ts";
import { trafficCommand } from "./commands/traffic.ts";
import { upCommand } from "./commands/up.ts";
import { validateCommand } from "./commands/validate.ts";
import { weightsCommand } from "./commands/weights.ts";

const COMMANDS: Command[] = [
  upCommand,
  downCommand,
  statusCommand,
  eventsCommand,
  incidentsCommand,
  trafficCommand,
  dataPlaneCommand,
  weightsCommand,
  deployCommand,
  applyCommand,
  rollbackCommand,
  planCommand,
  releasesCommand,
  diffCommand,
  historyCommand,
  checkCommand,
  zonesCommand,
  failoverCommand,
  failbackCommand,
  storesCommand,
  switchoverCommand,
  pauseCommand,
  resumeCommand,
  restartCommand,
  faultCommand,
  initCommand,
  validateCommand,
  schemaCommand,
  tokenCommand,
  auditCommand,
];

function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "homeostat — a recovery control plane: keeps a fleet recoverable and times every recovery",
    "",
    "Usage: homeostat COMMAND [options]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `homeostat COMMAND --help` for a command's options.",
    "Commands that call the API send a token: --token T, else $HOMEOSTAT_TOKEN, else the admin",
    "token `homeostat up` wrote, found from any directory (docs/api.md#authentication).",
    "Exit codes: 0 ok, 1 user error, 2 internal error.",
  ].join("\n");
}

/** The version in package.json (one level above src/ or dist/, in a clone and in the package alike). */
function packageVersion(): string {
  try {
    const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
    return (JSON.parse(text) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    io.out(topic ? topic.usage : mainUsage());
    return 0;
  }
  if (name === "--version" || name === "-v") {
    io.out(`homeostat ${packageVersion()}`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.err(`homeostat: unknown command "${name}"\n\n${mainUsage()}`);
    return 1;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof HomeostatError) {
      io.err(`homeostat: ${error.message} [${error.code}]`);
    } else {
      io.err(
        `homeostat: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
    return exitCodeFor(error);
  }
}
