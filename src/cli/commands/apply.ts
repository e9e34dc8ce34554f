import { readFile } from "node:fs/promises";
import path from "node:path";
import { thisMachine } from "../../dataplane/haproxy/machineChecks.ts";
import { HomeostatError } from "../../errors.ts";
import { CHANGE_CLASSES } from "../../spec/diff.ts";
import { formatSpecError, parseFleet } from "../../spec/index.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, positiveIntOption } from "../args.ts";
import type { Command } from "../command.ts";
import { overrideFields, overrideOptions } from "../override.ts";

interface Change {
  service: string | null;
  class: string;
  detail: string;
}

interface Answer {
  dryRun: boolean;
  revision: number | null;
  state: "planned" | "applying" | "applied" | "unchanged";
  changes: Change[];
  steps: string[];
}

interface Progress {
  revision: number | null;
  state: "idle" | "applying" | "applied" | "failed";
  waiting: string[];
  error: string | null;
}

export const applyCommand: Command = {
  name: "apply",
  summary: "apply a changed fleet file to the running fleet: plan, record a revision, converge safely",
  usage: `homeostat apply FILE [--reason TEXT] [--override] [--dry-run] [--allow-in-place] [--no-wait] [--json] [--api-port N]
homeostat apply --revision N [--reason TEXT] [--override] [--dry-run] [--no-wait] [--json] [--api-port N]

Validates FILE (any error changes nothing: exit 1 with file:line:col problems, as \`validate\`),
diffs it against the applied spec and prints the plan grouped by class, then records a new spec
revision and converges: live settings (traffic policy, probes, SLO, deploy and failover settings…)
at once, the data plane fed at once; scale up, and scale down draining first; a new service after
its dependencies; a removed service drained then stopped (refused while another depends on it); a
changed \`release:\` through the progressive deploy with analysis, exactly like \`deploy\`. A release
definition edited under the same version name is refused (name a new version) unless
--allow-in-place, which rolls it one instance at a time behind readiness. Refused while a deploy,
rollback or failover holds an affected service. Follows progress until converged (--no-wait: not).
--revision N re-applies an earlier revision (see \`homeostat history\`); its release changes pass
the rollback safety checks. An instance rolled in place that is not ready within the service's
deploy.stepDeadline fails the revision: the previous spec is put back and the instances rolled go
back to it one at a time behind readiness (followed until they have).
While automation is paused (\`homeostat pause\`) an apply (not a dry run) needs --override with
--reason (audited).
Exit 0 applied (or nothing to change), 1 refused or failed.`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "apply",
      argv,
      {
        ...overrideOptions,
        "dry-run": { type: "boolean" },
        "allow-in-place": { type: "boolean" },
        "no-wait": { type: "boolean" },
        revision: { type: "string" },
        json: { type: "boolean" },
        ...apiPortOption,
      },
      1,
    );
    const file = positionals[0];
    const body: Record<string, unknown> = {};
    if (values.revision !== undefined) {
      if (file !== undefined)
        throw new HomeostatError("HS_USAGE", "apply: give FILE or --revision N, not both");
      body.revision = positiveIntOption(values, "revision", 0);
    } else {
      if (file === undefined)
        throw new HomeostatError("HS_USAGE", "apply: missing FILE (see `homeostat apply --help`)");
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (error) {
        io.out(
          formatSpecError({
            file,
            line: 1,
            col: 1,
            path: "",
            message: `cannot read the file: ${error instanceof Error ? error.message : String(error)}`,
          }),
        );
        return 1;
      }
      // Checked here first, so the problems read exactly as `validate` prints them.
      const local = parseFleet(text, file, thisMachine);
      if (!local.ok) {
        if (values.json === true) io.out(JSON.stringify({ ok: false, errors: local.errors }, null, 2));
        else for (const error of local.errors) io.out(formatSpecError(error));
        io.err("apply: the file is not valid: nothing was applied");
        return 1;
      }
      body.text = text;
      body.file = path.resolve(file);
    }
    Object.assign(body, overrideFields("apply", values));
    if (values["dry-run"] === true) body.dryRun = true;
    if (values["allow-in-place"] === true) body.allowInPlace = true;
    const client = apiClient(apiPort(values), { timeoutMs: 30_000 });
    const answer = await client.post<Answer>("/v1/apply", body);
    if (values.json === true && (answer.revision === null || values["no-wait"] === true)) {
      io.out(JSON.stringify(answer, null, 2));
      return 0;
    }
    if (values.json !== true) printPlan(answer, io.out);
    if (answer.revision === null || values["no-wait"] === true) return 0;
    let last = "";
    let failed = false;
    let rollingBack = false;
    for (;;) {
      const progress = await client.get<Progress>("/v1/apply");
      if (progress.revision !== answer.revision) {
        // A newer apply took over: this one did not converge as such.
        io.err(`revision ${answer.revision} was superseded by revision ${progress.revision}`);
        return 1;
      }
      if (progress.state === "applied") {
        if (values.json === true) io.out(JSON.stringify({ ...answer, state: "applied" }, null, 2));
        else io.out(`revision ${answer.revision} applied: the fleet has converged`);
        return 0;
      }
      if (progress.state === "failed") {
        if (!failed) io.err(`revision ${answer.revision} failed: ${progress.error ?? "unknown"}`);
        failed = true;
        // What it rolled in place goes back to the previous definition: followed until it has.
        if (progress.waiting.length === 0) {
          if (rollingBack)
            io.err(`revision ${answer.revision}: rolled back, no instance runs its definition`);
          return 1;
        }
        rollingBack = true;
      }
      const line = progress.waiting.join("; ");
      if (line !== last && values.json !== true) io.out(`  waiting: ${line}`);
      last = line;
      await new Promise((r) => setTimeout(r, 500));
    }
  },
};

function printPlan(answer: Answer, out: (line: string) => void): void {
  if (answer.changes.length === 0) {
    out("no differences: nothing to apply");
    return;
  }
  for (const cls of CHANGE_CLASSES) {
    const changes = answer.changes.filter((c) => c.class === cls);
    if (changes.length === 0) continue;
    out(`${cls}:`);
    for (const c of changes) out(`  ${c.service ?? "fleet"}: ${c.detail}`);
  }
  out("steps:");
  for (const step of answer.steps) out(`  - ${step}`);
  if (answer.dryRun) out("dry run: nothing was applied");
  else out(`revision ${answer.revision} recorded: applying`);
}
