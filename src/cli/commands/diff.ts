import { readFile } from "node:fs/promises";
import { thisMachine } from "../../dataplane/haproxy/machineChecks.ts";
import { HomeostatError } from "../../errors.ts";
import { diffFleets, type FleetDiff, type SpecChange, summarizeDiff } from "../../spec/diff.ts";
import { type FleetSpec, formatSpecError, loadFleetFile } from "../../spec/index.ts";
import { specContentHash } from "../../store/specRevisions.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { CliIo, Command } from "../command.ts";
import { table } from "../format.ts";

/** `GET /v1/spec`: the applied revision. */
interface AppliedSpec {
  revision: number;
  hash: string;
  file: string;
  text: string;
  spec: FleetSpec;
}

export const diffCommand: Command = {
  name: "diff",
  summary: "every difference between a fleet file and the applied spec, and what applying it does",
  usage: `homeostat diff FILE [--json] [--api-port N]

Validates FILE exactly like \`homeostat validate\` (errors as FILE:LINE:COL: PATH: MESSAGE), asks
the running controller for the applied spec revision, and lists every difference, grouped by
service, each with what applying it does:
  live              applies without touching an instance (traffic policy, probes, capacity,
                    SLO, deploy settings, security lists, failover, invariants, notifications)
  replace           instances are started again (placement, basePort)
  scale             replicas up, or down with drain first
  add-service       a new service, started after its dependencies
  remove-service    a service drained, then stopped
  release-switch    \`release:\` changed: a progressive deploy with analysis
  release-added     a version added to \`releases\`
  release-removed   a version removed from \`releases\`
  release-edited    a version's definition changed under the same name: refused (a release is
                    immutable, name a new version) unless applied with --allow-in-place
Changes nothing. See docs/operations.md, "Diff and history".

Exit codes, like diff(1): 0 no differences, 1 differences, 2 error (an invalid FILE, no
controller, no applied revision).

Options:
  --json         print {"ok": true, "revision", "hash", "file", "sameText", "diff": {"changes", "empty"}}
                 or {"ok": false, "errors": [...]} (validation) / {"ok": false, "error": {...}}
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse("diff", argv, { json: { type: "boolean" }, ...apiPortOption }, 1);
    const file = positionals[0];
    if (file === undefined)
      throw new HomeostatError("HS_USAGE", "diff: missing FILE (see `homeostat diff --help`)");
    const json = values.json === true;
    const loaded = await loadFleetFile(file, thisMachine);
    if (!loaded.ok) {
      if (json) io.out(JSON.stringify({ ok: false, errors: loaded.errors }, null, 2));
      else for (const error of loaded.errors) io.out(formatSpecError(error));
      return 2;
    }
    let applied: AppliedSpec;
    try {
      applied = await apiClient(apiPort(values)).get<AppliedSpec>("/v1/spec");
    } catch (error) {
      // diff(1)'s convention: trouble is 2, whatever kind it is.
      if (!(error instanceof HomeostatError)) throw error;
      if (json)
        io.out(JSON.stringify({ ok: false, error: { code: error.code, message: error.message } }, null, 2));
      else io.err(`homeostat: ${error.message} [${error.code}]`);
      return 2;
    }
    const diff = diffFleets(applied.spec, loaded.fleet);
    const sameText = specContentHash(await readFile(file, "utf8")) === applied.hash;
    if (json) {
      io.out(
        JSON.stringify(
          { ok: true, revision: applied.revision, hash: applied.hash, file: applied.file, sameText, diff },
          null,
          2,
        ),
      );
    } else {
      renderDiff(diff, { file, revision: applied.revision, sameText }, io);
    }
    return diff.empty ? 0 : 1;
  },
};

/** The human diff: a header, then each service's changes (fleet-wide first), then the counts. */
export function renderDiff(
  diff: FleetDiff,
  about: { file: string; revision: number; sameText: boolean },
  io: CliIo,
): void {
  if (diff.empty) {
    io.out(
      about.sameText
        ? `${about.file}: no differences from the applied revision ${about.revision}`
        : `${about.file}: no differences from the applied revision ${about.revision} (the text differs: comments or spelling only)`,
    );
    return;
  }
  io.out(`${about.file} against the applied revision ${about.revision}:`);
  for (const [service, changes] of groupByService(diff.changes)) {
    io.out("");
    const head =
      service === null
        ? "fleet-wide"
        : changes.some((c) => c.class === "add-service")
          ? `${service} (new service)`
          : changes.some((c) => c.class === "remove-service")
            ? `${service} (removed)`
            : service;
    io.out(`${head}:`);
    io.out(
      table(
        ["  CLASS", "CHANGE"],
        changes.map((c) => [`  ${c.class}`, c.detail]),
      ),
    );
  }
  io.out("");
  io.out(`${diff.changes.length} change(s): ${summarizeDiff(diff)}`);
}

/** Changes by service, in the diff's order (fleet-wide, then services). */
function groupByService(changes: SpecChange[]): Map<string | null, SpecChange[]> {
  const groups = new Map<string | null, SpecChange[]>();
  for (const change of changes) {
    const list = groups.get(change.service) ?? [];
    list.push(change);
    groups.set(change.service, list);
  }
  return groups;
}
