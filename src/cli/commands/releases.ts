import type { FailoverPlan } from "../../decide/failover/types.ts";
import type { ReleaseHistoryEntry, RollbackPlan } from "../../decide/rollback/types.ts";
import { HomeostatError } from "../../errors.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, stringOption } from "../args.ts";
import type { Command } from "../command.ts";
import { clock, duration, table } from "../format.ts";
import { OVERRIDE_HELP, overrideFields, overrideOptions } from "../override.ts";
import { renderFailoverPlan } from "./check.ts";

export const releasesCommand: Command = {
  name: "releases",
  summary: "a service's release history: status, proof, deploys and rollbacks",
  usage: `homeostat releases SERVICE [--json] [--api-port N]

The releases SERVICE ran, newest first, with their status (deploying, active, proven, failed,
rolled-back, superseded), when they were proven and the evidence (requests, error rate, p99 over
the soak window), and the recent deploys and rollbacks with their verdicts.`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "releases",
      argv,
      { json: { type: "boolean" }, ...apiPortOption },
      1,
    );
    const service = positionals[0];
    if (service === undefined) throw new HomeostatError("HS_USAGE", "releases: missing SERVICE");
    const doc = await apiClient(apiPort(values)).get<{
      active: string;
      history: ReleaseHistoryEntry[];
      rollouts: {
        id: number;
        kind: string;
        finished: boolean;
        state: { phase: string; from: string; to: string; reason: string | null };
      }[];
    }>(`/v1/services/${encodeURIComponent(service)}/releases`);
    if (values.json === true) {
      io.out(JSON.stringify(doc, null, 2));
      return 0;
    }
    io.out(`${service}: active release ${doc.active}`);
    io.out(
      table(
        ["VERSION", "STATUS", "DEPLOYED", "PROVEN", "EVIDENCE"],
        doc.history.map((r) => [
          r.version,
          r.status,
          clock(r.deployedAt),
          clock(r.provenAt),
          r.evidence
            ? `${r.evidence.requests} req, ${(r.evidence.errorRate * 100).toFixed(2)} % errors, p99 ${r.evidence.p99Ms === null ? "-" : `${r.evidence.p99Ms.toFixed(1)}ms`} over ${duration(r.evidence.windowMs)}`
            : "-",
        ]),
      ),
    );
    if (doc.rollouts.length > 0) {
      io.out("");
      io.out(
        table(
          ["ROLLOUT", "KIND", "FROM", "TO", "PHASE", "REASON"],
          doc.rollouts.map((r) => [
            String(r.id),
            r.kind,
            r.state.from,
            r.state.to,
            r.state.phase,
            r.state.reason ?? "-",
          ]),
        ),
      );
    }
    return 0;
  },
};

export const deployCommand: Command = {
  name: "deploy",
  summary: "progressively deploy a release: canary steps, analysis, automatic rollback",
  usage: `homeostat deploy SERVICE VERSION [--reason TEXT] [--override] [--api-port N]

Starts VERSION's instances beside the running release, then moves traffic to it in the
service's steps (default 10 %, 50 %, 100 %). At each step it compares the new release with the
stable one (error rate, p99) from the data plane's stats: pass, fail or inconclusive — no data
is never a pass, and every step has a deadline that aborts. A failing verdict returns all
traffic to the stable release at once and stops the new instances. After 100 %, the release
soaks within its SLO to become proven. Refused up front when VERSION is denied, uses a revoked
secret, or needs a schema or a neighbour's API that today's world does not have.
Follow it with \`homeostat events -f\` and \`homeostat releases SERVICE\`.

Options:
${OVERRIDE_HELP}
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse("deploy", argv, { ...overrideOptions, ...apiPortOption }, 2);
    const [service, version] = positionals;
    if (service === undefined || version === undefined)
      throw new HomeostatError("HS_USAGE", "deploy: expected SERVICE VERSION");
    const { rollout } = await apiClient(apiPort(values)).post<{
      rollout: { id: number; from: string; to: string };
    }>(`/v1/services/${encodeURIComponent(service)}/deploy`, {
      version,
      ...overrideFields("deploy", values),
    });
    io.out(
      `deploy ${rollout.id} started: ${service} ${rollout.from} → ${rollout.to} (watch: homeostat events -f --service ${service})`,
    );
    return 0;
  },
};

export const rollbackCommand: Command = {
  name: "rollback",
  summary: "roll back to a proven release, behind safety checks (refuses what cannot be undone)",
  usage: `homeostat rollback SERVICE [--to VERSION] [--force --reason TEXT] [--override] [--json] [--api-port N]

Runs the rollback safety checks (evidence, drift, compatibility, irreversible migrations,
security) — see \`homeostat plan rollback\` — and, unless refused, starts the target release
beside the current one, moves all traffic once it is ready, and stops the current release.
A refusal names every blocking check and proposes an alternative (an older proven release, or a
roll-forward: a proven artifact with today's config). --force overrides a refusal; it needs
--reason and is journaled. While automation is paused (\`homeostat pause\`) a rollback is a
manual action that needs --override with --reason (audited). A deploy whose automatic rollback
an automation brake held is rolled back by this command as the machine wanted it.`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "rollback",
      argv,
      {
        to: { type: "string" },
        force: { type: "boolean" },
        ...overrideOptions,
        json: { type: "boolean" },
        ...apiPortOption,
      },
      1,
    );
    const service = positionals[0];
    if (service === undefined) throw new HomeostatError("HS_USAGE", "rollback: missing SERVICE");
    const body: Record<string, unknown> = {};
    const to = stringOption(values, "to");
    if (to !== undefined) body.to = to;
    if (values.force === true) body.force = true;
    Object.assign(body, overrideFields("rollback", values));
    const result = await apiClient(apiPort(values)).post<{ plan: RollbackPlan }>(
      `/v1/services/${encodeURIComponent(service)}/rollback`,
      body,
    );
    if (values.json === true) io.out(JSON.stringify(result, null, 2));
    else {
      io.out(`rollback of ${service} to ${result.plan.to} started (${result.plan.decision})`);
      for (const c of result.plan.checks.filter((c) => !c.ok)) io.out(`  ! ${c.name}: ${c.detail}`);
    }
    return 0;
  },
};

export const planCommand: Command = {
  name: "plan",
  summary: "dry runs: plan rollback SERVICE, plan failover ZONE",
  usage: `homeostat plan rollback SERVICE [--to VERSION] [--json] [--api-port N]
homeostat plan failover ZONE [--json] [--api-port N]

plan failover: how ZONE's traffic would move to the other zones in capacity-checked steps —
each target instance's projected utilization per step, instances to add before anything is
shed, sheddable (then default, never critical) traffic to shed to stay under the ceiling, the
reasons, and whether it is feasible. From the declared capacity and the measured load.
Changes nothing.

plan rollback:

A dry run of a rollback: the target (the newest proven release unless --to), every safety check
with its result (evidence, drift, compatibility, migrations, security), the decision
(rollback | rollback-with-warnings | refuse), the alternative when refused, the steps and the
expected duration. Changes nothing.`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "plan",
      argv,
      { to: { type: "string" }, json: { type: "boolean" }, ...apiPortOption },
      2,
    );
    const [what, service] = positionals;
    if (what === "failover") {
      if (service === undefined) throw new HomeostatError("HS_USAGE", "plan failover: missing ZONE");
      const plan = await apiClient(apiPort(values)).get<FailoverPlan>(
        `/v1/failover-plan?domain=${encodeURIComponent(service)}`,
      );
      if (values.json === true) io.out(JSON.stringify(plan, null, 2));
      else renderFailoverPlan(plan, io);
      return 0;
    }
    if (what !== "rollback") {
      throw new HomeostatError(
        "HS_USAGE",
        `plan: expected "plan rollback SERVICE" or "plan failover ZONE", got "${what ?? ""}"`,
      );
    }
    if (service === undefined) throw new HomeostatError("HS_USAGE", "plan rollback: missing SERVICE");
    const to = stringOption(values, "to");
    const plan = await apiClient(apiPort(values)).get<RollbackPlan>(
      `/v1/services/${encodeURIComponent(service)}/rollback-plan${to === undefined ? "" : `?to=${encodeURIComponent(to)}`}`,
    );
    if (values.json === true) {
      io.out(JSON.stringify(plan, null, 2));
      return 0;
    }
    io.out(`rollback ${plan.service}: ${plan.from} → ${plan.to}: ${plan.decision.toUpperCase()}`);
    io.out(
      table(
        ["CHECK", "RESULT", "DETAIL"],
        plan.checks.map((c) => [c.name, c.ok ? "ok" : c.severity, c.detail]),
      ),
    );
    if (plan.alternative) {
      io.out("");
      io.out(
        `alternative (${plan.alternative.kind}): ${plan.alternative.version} — ${plan.alternative.description}`,
      );
    }
    if (plan.steps.length === 0) return 0;
    io.out("");
    io.out(`steps (about ${duration(plan.expectedDurationMs)}):`);
    for (const [i, step] of plan.steps.entries()) io.out(`  ${i + 1}. ${step}`);
    return 0;
  },
};
