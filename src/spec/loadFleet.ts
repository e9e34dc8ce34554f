import { readFile } from "node:fs/promises";
import path from "node:path";
import { HomeostatError } from "../errors.ts";
import { checkFleet } from "./checks.ts";
import { checkEngines, type EngineCheckSubject } from "./engineChecks.ts";
import type { FleetSpec } from "./model.ts";
import { PORT_BANKS } from "./ports.ts";
import type { Problem } from "./problem.ts";
import { resolveFleet } from "./resolve.ts";
import { type FleetInput, fleetSchema, hostsSchema } from "./schema.ts";
import { formatPath, formatSpecError, type SpecError } from "./specError.ts";
import { checkStores, storesSchema } from "./stores.ts";
import { subjectOfInvalidFleet, subjectOfValidFleet } from "./validParts.ts";
import { parseYamlSource, type YamlSource } from "./yamlSource.ts";
import { PARSE_OPTIONS, problemsFromIssues } from "./zodIssues.ts";

/** A resolved fleet, or every problem found in the file (sorted by position). */
export type LoadResult = { ok: true; fleet: FleetSpec } | { ok: false; errors: SpecError[] };

/** What a fleet file is checked against beyond itself: the machine it is read on. */
export interface MachineChecks {
  /**
   * Where the `haproxy` binary is, or null when it is missing: asked only when a service uses the
   * `haproxy` engine. Left out, the file is judged on its own (no machine check).
   */
  haproxyBinary?: () => string | null;
}

/**
 * Reads and validates a fleet file. Never throws for a bad or missing file: an unreadable file
 * is one error at 1:1 saying why. Errors name the file as `file` was given.
 */
export async function loadFleetFile(file: string, machine: MachineChecks = {}): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      errors: [{ file, line: 1, col: 1, path: "", message: `cannot read the file: ${why}` }],
    };
  }
  return parseFleet(text, file, machine);
}

/**
 * Validates fleet YAML text. `file` names the text in errors and anchors relative paths (release
 * `cwd`) and the default fleet name (its directory's name).
 */
export function parseFleet(text: string, file: string, machine: MachineChecks = {}): LoadResult {
  const yaml = parseYamlSource(text);
  if (!yaml.ok) {
    return { ok: false, errors: yaml.errors.map((error) => ({ file, path: "", ...error })) };
  }
  const data = yaml.source.data;
  const parsed = fleetSchema.safeParse(data, PARSE_OPTIONS);
  const subject = parsed.success ? subjectOfValidFleet(parsed.data) : subjectOfInvalidFleet(data);
  const problems = [
    ...(parsed.success ? [] : problemsFromIssues(parsed.error.issues)),
    ...checkFleet(subject),
    ...storeProblems(data, parsed.success ? parsed.data : undefined),
    ...(machine.haproxyBinary !== undefined && usesHaproxy(subject)
      ? checkEngines(subject, machine.haproxyBinary())
      : []),
  ];
  if (parsed.success && problems.length === 0) {
    return { ok: true, fleet: resolveFleet(parsed.data, path.resolve(file)) };
  }
  return { ok: false, errors: locate(problems, yaml.source, file) };
}

/** Throws `HS_SPEC_INVALID` (every error in the message and in `details.errors`) unless ok. */
export function fleetOrThrow(result: LoadResult): FleetSpec {
  if (result.ok) return result.fleet;
  throw new HomeostatError("HS_SPEC_INVALID", result.errors.map(formatSpecError).join("\n"), {
    details: { errors: result.errors },
  });
}

/**
 * The cross-field rules of `stores` (placement, ports against the services' and each other's),
 * judged when the stores and the hosts passed the schema; the services' ports count as far as
 * they are valid.
 */
function storeProblems(data: unknown, fleet: FleetInput | undefined): Problem[] {
  const raw = (typeof data === "object" && data !== null ? data : {}) as Record<string, unknown>;
  const stores = fleet?.stores ?? storesSchema.safeParse(raw.stores).data;
  if (stores === undefined) return [];
  const hosts = fleet?.hosts ?? hostsSchema.safeParse(raw.hosts).data;
  if (raw.hosts !== undefined && hosts === undefined) return [];
  const services =
    fleet?.services ?? (typeof raw.services === "object" && raw.services !== null ? raw.services : {});
  const ports: { name: string; low: number; high: number }[] = [];
  for (const [name, service] of Object.entries(services as Record<string, Record<string, unknown>>)) {
    const { basePort, replicas, port } = service ?? {};
    if (typeof basePort === "number" && typeof replicas === "number") {
      ports.push({ name, low: basePort, high: basePort + PORT_BANKS * replicas - 1 });
    }
    if (typeof port === "number") ports.push({ name, low: port, high: port });
  }
  return checkStores(stores, hosts, ports);
}

function usesHaproxy(subject: EngineCheckSubject): boolean {
  return (
    subject.defaultTraffic?.engine === "haproxy" ||
    subject.services.some((service) => service.traffic?.engine === "haproxy")
  );
}

function locate(problems: readonly Problem[], source: YamlSource, file: string): SpecError[] {
  const errors = problems.map((problem) => ({
    file,
    ...source.positionOf(problem.path, problem.target),
    path: formatPath(problem.target === "parent" ? problem.path.slice(0, -1) : problem.path),
    message: problem.message,
  }));
  return errors.sort((a, b) => a.line - b.line || a.col - b.col);
}
