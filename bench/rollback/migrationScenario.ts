/**
 * The migration scenario: `deploy checkout v3-migrates` on a clean fleet (v1 proven first, under
 * steady load), which migrates orders-db 5 → 6 irreversibly and is proven after its soak; then
 * `homeostat plan rollback checkout --json` must refuse (the migrations check blocks) and offer an
 * alternative, and `homeostat rollback checkout` must be refused the same way. Last,
 * `deploy checkout v4-needs-catalog-v2` must be refused up front (catalog serves API 1.x).
 */

import { join } from "node:path";
import type { CheckResult, RollbackPlan } from "../../src/decide/rollback/types.ts";
import type { FleetSpec } from "../../src/spec/index.ts";
import type { EventRecord } from "../../src/store/index.ts";
import type { CliResult } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { failed } from "./analysis.ts";
import { ControllerRun, type RolloutSummary } from "./controllerRun.ts";
import { type LoadHealth, OpenLoad } from "./openLoad.ts";
import type { RollbackBenchOptions } from "./options.ts";
import { INCOMPATIBLE, MIGRATING, type ScenarioFacts, STABLE } from "./scenario.ts";

/** A CLI call as recorded: what was typed and what came back. */
export interface CliCall {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface MigrationScenario {
  attempt: number;
  ok: boolean;
  problems: string[];
  error?: string;
  /** Controller start → v1 proven (its soak under the bench's load), ms. */
  stableProvenAfterMs?: number;
  /**
   * Whether the load generator kept its schedule over the scenario (the deploy's request counts
   * below are only as good as the load that made them).
   */
  load?: LoadHealth;
  /** Deploy start → v3-migrates proven, ms, and what the load saw meanwhile. */
  deploy?: {
    durationMs: number;
    phase: string;
    reason: string | null;
    requests: number;
    failed: number;
    events: { at: number; type: string; reason: string; message: string }[];
  };
  rollout?: RolloutSummary;
  /**
   * Set when the deploy did not prove itself but failed a step, and its automatic rollback was
   * refused (the migration cannot be undone): the rollout is held for an operator.
   */
  held?: { at: number; cause: string; refusal: string };
  /** `plan rollback checkout --json`, parsed. */
  plan?: RollbackPlan;
  /** What the bench checked in the plan. */
  planFindings?: {
    decision: string;
    to: string;
    blocking: string[];
    migrations: CheckResult | null;
    alternative: { kind: string; version: string } | null;
  };
  cli?: {
    planText: CliCall;
    planJson: CliCall;
    rollback: CliCall;
    deployIncompatible: CliCall;
    releases: CliCall;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function call(command: string[], result: CliResult): CliCall {
  return {
    command: `homeostat ${command.join(" ")}`,
    code: result.code,
    stdout: result.stdout,
    stderr: result.stderr,
  };
}

export async function migrationScenario(options: {
  attempt: number;
  fleetFile: string;
  fleet: FleetSpec;
  facts: ScenarioFacts;
  scratch: string;
  ledger: ProcessLedger;
  bench: RollbackBenchOptions;
  onController: (run: ControllerRun | null) => void;
  log: (message: string) => void;
}): Promise<MigrationScenario> {
  const { facts, bench, log } = options;
  const service = facts.service;
  let run: ControllerRun | null = null;
  const load = new OpenLoad({
    port: facts.frontPort,
    path: "/",
    ratePerSecond: bench.ratePerSecond,
    timeoutMs: 10_000,
  });
  const problems: string[] = [];
  try {
    const startedAt = Date.now();
    run = await ControllerRun.start({
      fleetFile: options.fleetFile,
      fleet: options.fleet,
      stateDir: join(options.scratch, `migration-${options.attempt}`, "state"),
      ledger: options.ledger,
    });
    options.onController(run);
    load.start();
    log(`  waiting for ${service} ${STABLE} to be proven (soak ${facts.soakMs / 1000} s under load)…`);
    const proven = await waitFor(
      async () => {
        run!.homeostat.assertRunning();
        const entry = (await run!.releases(service)).history.find((h) => h.version === STABLE);
        return entry?.status === "proven" ? entry : null;
      },
      { timeoutMs: facts.soakMs + 60_000, intervalMs: 250, what: `${service} ${STABLE} proven` },
    );
    const stableProvenAfterMs = (proven.provenAt ?? Date.now()) - startedAt;

    log(`  deploy ${service} ${MIGRATING}…`);
    const deployArgs = ["deploy", service, MIGRATING];
    const deploy = await run.cli(deployArgs);
    if (deploy.code !== 0)
      throw new Error(`deploy failed (${deploy.code}): ${deploy.stderr}${deploy.stdout}`);
    const id = await waitFor(
      async () =>
        (await run!.releases(service)).rollouts.find((r) => r.kind === "deploy" && r.state.to === MIGRATING)
          ?.id,
      { timeoutMs: 10_000, what: "the deploy's rollout record" },
    );
    const budget = facts.stepDeadlineMs * (facts.steps.length + 1) + facts.soakMs + 60_000;
    const rollout = await run.settledRollout(service, id, budget);
    const held = rollout.state.held;
    const events: EventRecord[] = await run.events();
    const ofRollout = events.filter(
      (e) =>
        (e.type.startsWith("deploy.") || e.type === "traffic.weights") &&
        (e.data as { rollout?: unknown } | undefined)?.rollout === id,
    );
    const startedEvent = ofRollout.find((e) => e.type === "deploy.started");
    const endAt = held?.at ?? rollout.state.endedAt ?? Date.now();
    const fromAt = startedEvent?.at ?? rollout.state.startedAt;
    if (held !== undefined) {
      problems.push(
        `${MIGRATING} did not prove itself: ${held.cause}; its automatic rollback was refused (${held.refusal}), so the deploy is held`,
      );
    } else if (rollout.state.phase !== "proven") {
      problems.push(`${MIGRATING} ended ${rollout.state.phase}: ${rollout.state.reason ?? ""}`);
    }
    // Traffic stays on for the plan: the controller keeps judging, nothing should change.
    const planTextArgs = ["plan", "rollback", service];
    const planJsonArgs = [...planTextArgs, "--json"];
    const rollbackArgs = ["rollback", service];
    const incompatibleArgs = ["deploy", service, INCOMPATIBLE];
    const releasesArgs = ["releases", service];
    const planText = await run.cli(planTextArgs);
    const planJson = await run.cli(planJsonArgs);
    const rollback = await run.cli(rollbackArgs);
    const deployIncompatible = await run.cli(incompatibleArgs);
    const releases = await run.cli(releasesArgs);
    await sleep(500);
    // The generator hands its records over once it has stopped.
    const loaded = await load.stop();
    const during = loaded.records.filter((r) => r.sent >= fromAt && r.sent < endAt);
    const deployFigures = {
      durationMs: endAt - fromAt,
      phase: rollout.state.phase,
      reason: rollout.state.reason,
      requests: during.length,
      failed: during.filter(failed).length,
      events: ofRollout.map((e) => ({ at: e.at, type: e.type, reason: e.reason, message: e.message })),
    };

    const plan = JSON.parse(planJson.stdout) as RollbackPlan;
    const migrations = plan.checks.find((c) => c.name === "migrations") ?? null;
    const blocking = plan.checks.filter((c) => c.severity === "blocking").map((c) => c.name);
    if (plan.decision !== "refuse") problems.push(`plan decision is ${plan.decision}, expected refuse`);
    if (migrations?.severity !== "blocking") problems.push("the migrations check does not block");
    if (plan.alternative === undefined) problems.push("the refused plan has no alternative");
    if (rollback.code === 0) problems.push("`rollback` was not refused");
    // A held deploy answers HS_CONFLICT instead (it is still in progress).
    const refusedCode = held === undefined ? "HS_ROLLBACK_REFUSED" : "HS_CONFLICT";
    if (!`${rollback.stderr}${rollback.stdout}`.includes(refusedCode))
      problems.push(`\`rollback\` did not fail with ${refusedCode}`);
    if (deployIncompatible.code === 0) problems.push(`deploy of ${INCOMPATIBLE} was not refused`);
    return {
      attempt: options.attempt,
      ok: problems.length === 0,
      problems,
      ...(held === undefined ? {} : { held: { at: held.at, cause: held.cause, refusal: held.refusal } }),
      stableProvenAfterMs,
      load: loaded.health,
      deploy: deployFigures,
      rollout,
      plan,
      planFindings: {
        decision: plan.decision,
        to: plan.to,
        blocking,
        migrations,
        alternative:
          plan.alternative === undefined
            ? null
            : { kind: plan.alternative.kind, version: plan.alternative.version },
      },
      cli: {
        planText: call(planTextArgs, planText),
        planJson: call(planJsonArgs, planJson),
        rollback: call(rollbackArgs, rollback),
        deployIncompatible: call(incompatibleArgs, deployIncompatible),
        releases: call(releasesArgs, releases),
      },
    };
  } catch (error) {
    const output =
      run?.homeostat
        .output()
        .split("\n")
        .slice(-12)
        .map((line) => line.slice(0, 300))
        .join("\n") ?? "";
    return {
      attempt: options.attempt,
      ok: false,
      problems,
      error: `${error instanceof Error ? error.message : String(error)}${output ? `\ncontroller output:\n${output}` : ""}`,
    };
  } finally {
    if (load.started) await load.stop().catch(() => undefined);
    if (run !== null) await run.stop();
    options.onController(null);
  }
}
