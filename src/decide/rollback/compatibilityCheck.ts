import type { ReleaseSpec } from "../../spec/model.ts";
import { checkResult, messagesOf, type WeighedFinding } from "./checkResult.ts";
import type { RollbackContext } from "./context.ts";
import { listSome } from "./display.ts";
import { describeSchema, liveSchema } from "./liveSchema.ts";
import type { CheckResult } from "./types.ts";
import { apiSatisfies, type RangeVerdict, schemaSatisfies } from "./versions.ts";

/**
 * Whether the candidate can work in the world as it is now, which a rollback does not change:
 * (a) its schema requirements against the live schemas, (b) its API requirements against what its
 * dependencies serve now, (c) what its dependents require of this service against the API the
 * candidate provides. Any failure blocks, and so does a requirement that cannot be judged (no
 * known version on the other side, or a malformed range): unknown is not compatible.
 *
 * `label` names the candidate in messages (its version, or a description of a synthetic release).
 */
export function compatibilityCheck(
  context: RollbackContext,
  candidate: ReleaseSpec,
  label: string,
): CheckResult {
  const findings: WeighedFinding[] = [
    ...schemaFindings(context, candidate, label),
    ...apiFindings(context, candidate, label),
    ...dependentFindings(context, candidate, label),
  ];
  return checkResult("compatibility", findings, (severity, ordered) => {
    if (ordered.length === 0) {
      return `${label} declares no schema or API requirements and no running service requires its API`;
    }
    if (severity === "ok") return `all ${ordered.length} requirement(s) around ${label} hold today`;
    const failures = messagesOf(ordered, "blocking");
    return `${label} does not fit the world as it is now: ${listSome(failures, 3)}`;
  });
}

function schemaFindings(context: RollbackContext, candidate: ReleaseSpec, label: string): WeighedFinding[] {
  return Object.entries(candidate.requires.schemas).map(([datastore, range]) => {
    const field = `requires.schemas.${datastore}`;
    const reading = liveSchema(context, datastore);
    if (reading === undefined) {
      return blocking(
        field,
        range,
        undefined,
        `unknown: ${datastore} has no known schema version; ${label} requires ${range}`,
      );
    }
    const actual = String(reading.version);
    return judged(schemaSatisfies(reading.version, range), field, range, actual, {
      satisfied: `${describeSchema(datastore, reading)}, within ${label}'s ${range}`,
      unsatisfied: `${label} requires ${datastore} schema ${range}; ${describeSchema(datastore, reading)}`,
      invalid: `${label}'s schema requirement for ${datastore} cannot be judged`,
    });
  });
}

function apiFindings(context: RollbackContext, candidate: ReleaseSpec, label: string): WeighedFinding[] {
  return Object.entries(candidate.requires.apis).map(([dependency, range]) => {
    const field = `requires.apis.${dependency}`;
    const served = context.facts.servedApis[dependency];
    if (served === undefined) {
      return blocking(
        field,
        range,
        undefined,
        `unknown: ${dependency} serves no declared API version; ${label} requires ${range}`,
      );
    }
    return judged(apiSatisfies(served, range), field, range, served, {
      satisfied: `${dependency} serves ${served}, within ${label}'s ${range}`,
      unsatisfied: `${label} requires ${dependency} API ${range}; ${dependency} serves ${served} now`,
      invalid: `${label}'s API requirement on ${dependency} cannot be judged`,
    });
  });
}

function dependentFindings(
  context: RollbackContext,
  candidate: ReleaseSpec,
  label: string,
): WeighedFinding[] {
  const self = context.service.name;
  const provided = candidate.provides.api;
  return context.facts.dependents.map((dependent) => {
    const field = `dependents.${dependent.service}`;
    const who = `${dependent.service} ${dependent.version}`;
    if (provided === undefined) {
      return blocking(
        field,
        dependent.requires,
        undefined,
        `unknown: ${label} serves no declared API version; ${who} requires ${self} API ${dependent.requires}`,
      );
    }
    return judged(apiSatisfies(provided, dependent.requires), field, dependent.requires, provided, {
      satisfied: `${who} requires ${self} API ${dependent.requires}; ${label} provides ${provided}`,
      unsatisfied: `${who} requires ${self} API ${dependent.requires}; ${label} provides ${provided}, so ${dependent.service} would break`,
      invalid: `${who}'s requirement on ${self} cannot be judged`,
    });
  });
}

function judged(
  verdict: RangeVerdict,
  field: string,
  expected: string,
  actual: string,
  messages: { satisfied: string; unsatisfied: string; invalid: string },
): WeighedFinding {
  switch (verdict.kind) {
    case "satisfied":
      return { severity: "ok", finding: { field, expected, actual, message: messages.satisfied } };
    case "unsatisfied":
      return blocking(field, expected, actual, messages.unsatisfied);
    case "invalid":
      return blocking(field, expected, actual, `${messages.invalid}: ${verdict.reason}`);
  }
}

function blocking(
  field: string,
  expected: string,
  actual: string | undefined,
  message: string,
): WeighedFinding {
  const finding = actual === undefined ? { field, expected, message } : { field, expected, actual, message };
  return { severity: "blocking", finding };
}
