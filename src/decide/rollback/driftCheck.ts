import type { ReleaseSpec } from "../../spec/model.ts";
import { checkResult, type WeighedFinding } from "./checkResult.ts";
import { diffValues } from "./configDiff.ts";
import { jsonValue, listSome } from "./display.ts";
import type { CheckResult, LiveFacts, ReleaseHistoryEntry } from "./types.ts";

/**
 * What changes back: a rollback runs the target's whole record (its args, env, config, secret
 * versions and requirements), not today's. Every field that differs from the current record is a
 * finding with `expected` = the target's value (what will run) and `actual` = today's. Any drift is
 * a warning: the rollback may go ahead, but whoever changed today's config must know it is undone.
 *
 * Values are shown, env included: records hold secret references (name and version), never
 * secret values.
 */
export function driftCheck(
  target: ReleaseHistoryEntry,
  current: ReleaseHistoryEntry,
  facts: Pick<LiveFacts, "servedApis" | "schemas">,
): CheckResult {
  const to = target.version;
  const then = target.spec;
  const now = current.spec;
  const drift: WeighedFinding[] = [
    ...scalarDrift("command", then.command, now.command, to),
    ...scalarDrift("cwd", then.cwd, now.cwd, to),
    ...scalarDrift("args", then.args, now.args, to),
    ...envDrift(then.env, now.env, to),
    ...configDrift(then.config, now.config, to),
    ...secretDrift(then, now, to),
    ...requirementDrift("apis", then.requires.apis, now.requires.apis, to, (name) => servedNote(name, facts)),
    ...requirementDrift("schemas", then.requires.schemas, now.requires.schemas, to, (name) =>
      schemaNote(name, facts),
    ),
    ...scalarDrift("provides.api", then.provides.api, now.provides.api, to),
  ];
  return checkResult("drift", drift, () => {
    if (drift.length === 0) {
      return `${to}'s record matches what runs now (${current.version}): command, args, env, config, secrets and requirements are the same`;
    }
    const fields = drift.map((item) => item.finding.field ?? "?");
    return (
      `${to} runs its own record, not today's: ${drift.length} field(s) change back ` +
      `(${listSome(fields, 8)})`
    );
  });
}

function warning(field: string, expected: unknown, actual: unknown, message: string): WeighedFinding {
  return {
    severity: "warning",
    finding: { field, expected: jsonValue(expected), actual: jsonValue(actual), message },
  };
}

function scalarDrift(field: string, then: unknown, now: unknown, to: string): WeighedFinding[] {
  if (JSON.stringify(then) === JSON.stringify(now)) return [];
  return [
    warning(field, then, now, `${field}: ${jsonValue(now)} now, back to ${jsonValue(then)} with ${to}`),
  ];
}

function envDrift(then: Record<string, string>, now: Record<string, string>, to: string): WeighedFinding[] {
  const names = [...new Set([...Object.keys(then), ...Object.keys(now)])].sort();
  const drift: WeighedFinding[] = [];
  for (const name of names) {
    const before = then[name];
    const after = now[name];
    if (before === after) continue;
    const field = `env.${name}`;
    let message: string;
    if (before === undefined) message = `${field}: ${jsonValue(after)} now, unset with ${to}`;
    else if (after === undefined) message = `${field}: unset now, back to ${jsonValue(before)} with ${to}`;
    else message = `${field}: ${jsonValue(after)} now, back to ${jsonValue(before)} with ${to}`;
    drift.push(warning(field, before, after, message));
  }
  return drift;
}

function configDrift(then: unknown, now: unknown, to: string): WeighedFinding[] {
  return diffValues(then, now, "config").map((difference) =>
    warning(
      difference.path,
      difference.before,
      difference.after,
      `${difference.path}: ${jsonValue(difference.after)} now, back to ${jsonValue(difference.before)} with ${to}`,
    ),
  );
}

function secretDrift(then: ReleaseSpec, now: ReleaseSpec, to: string): WeighedFinding[] {
  const before = new Map(then.secrets.map((secret) => [secret.name, secret.version]));
  const after = new Map(now.secrets.map((secret) => [secret.name, secret.version]));
  const names = [...new Set([...before.keys(), ...after.keys()])].sort();
  const drift: WeighedFinding[] = [];
  for (const name of names) {
    const thenVersion = before.get(name);
    const nowVersion = after.get(name);
    if (thenVersion === nowVersion) continue;
    const field = `secrets.${name}`;
    let message: string;
    if (thenVersion === undefined) {
      message = `secret ${name} (version ${nowVersion}) is used now; ${to} does not get it`;
    } else if (nowVersion === undefined) {
      message = `secret ${name} is not used now; ${to} gets its version ${thenVersion} back`;
    } else {
      message = `secret ${name}: version ${nowVersion} now, back to version ${thenVersion} with ${to}`;
    }
    drift.push({
      severity: "warning",
      finding: { field, expected: thenVersion ?? "(absent)", actual: nowVersion ?? "(absent)", message },
    });
  }
  return drift;
}

/** Requirement ranges that differ, with what the world offers now so the reader can judge them. */
function requirementDrift(
  kind: "apis" | "schemas",
  then: Record<string, string>,
  now: Record<string, string>,
  to: string,
  liveNote: (name: string) => string,
): WeighedFinding[] {
  const names = [...new Set([...Object.keys(then), ...Object.keys(now)])].sort();
  const drift: WeighedFinding[] = [];
  for (const name of names) {
    const before = then[name];
    const after = now[name];
    if (before === after) continue;
    const field = `requires.${kind}.${name}`;
    const nowPart = after === undefined ? "not required now" : `${jsonValue(after)} now`;
    const thenPart =
      before === undefined ? `not required by ${to}` : `back to ${jsonValue(before)} with ${to}`;
    drift.push(warning(field, before, after, `${field}: ${nowPart}, ${thenPart} (${liveNote(name)})`));
  }
  return drift;
}

function servedNote(service: string, facts: Pick<LiveFacts, "servedApis">): string {
  const served = facts.servedApis[service];
  return served === undefined
    ? `${service} serves no declared API version now`
    : `${service} serves ${served} now`;
}

function schemaNote(datastore: string, facts: Pick<LiveFacts, "schemas">): string {
  const live = facts.schemas[datastore];
  return live === undefined
    ? `${datastore}'s live schema is unknown`
    : `${datastore} is at schema ${live} now`;
}
