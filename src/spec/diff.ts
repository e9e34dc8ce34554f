/**
 * The differences between two resolved fleets — the applied one and the one a fleet file asks
 * for — each classified by what applying it does to the running fleet. Pure: `homeostat diff`
 * prints it, `homeostat apply` plans from it, spec revisions store it.
 *
 * Classes (see docs/operations.md, "Diff and history"):
 * - `live`: a setting the controller and the data plane take without touching an instance —
 *   traffic policy, probes, restart policy, capacity, SLO, deploy settings, dependencies, the front
 *   port, invariants, and the fleet-wide sections (security lists, failover, datastores,
 *   notifications, data-plane workers, the fleet name).
 * - `replace`: instances must be started again elsewhere: `placement` (slot i moves to another
 *   zone or host) and `basePort` (every slot listens on another port).
 * - `scale`: `replicas`.
 * - `add-service`, `remove-service`: a whole service.
 * - `release-switch`: `release:` names another version — a progressive deploy with analysis.
 * - `release-added`, `release-removed`: a version added to or removed from `releases`.
 * - `release-edited`: a version present on both sides whose definition changed (command, args, env,
 *   config, cwd, secrets, requires, provides, migrations, policyHash). A release record is
 *   immutable: the same name must always mean the same thing, so this is refused unless the
 *   operator allows an in-place roll. Whether the edited version is the one running is in `detail`
 *   (only then would instances be replaced).
 *
 * Order is deterministic: fleet-wide changes first, then services in `next`'s dependency order,
 * then removed services in `applied`'s order; within a part, fields in the model's order.
 */

import type { FleetSpec, ReleaseSpec, ServiceSpec } from "./model.ts";

/** What applying a change does; see the module comment. */
export type SpecChangeClass =
  | "live"
  | "replace"
  | "scale"
  | "add-service"
  | "remove-service"
  | "release-switch"
  | "release-edited"
  | "release-added"
  | "release-removed";

/** One difference between the applied fleet and the next one. */
export interface SpecChange {
  /** The service it belongs to; null for a fleet-wide setting. */
  service: string | null;
  /** Dotted path in the resolved fleet, e.g. `services.api.traffic.retries.maxAttempts`. */
  path: string;
  class: SpecChangeClass;
  /** The applied value (undefined when absent: JSON drops it). */
  before: unknown;
  /** The next value (undefined when absent). */
  after: unknown;
  /** One human line: what changed and what applying it does. */
  detail: string;
}

/** Every difference, in a deterministic order; `empty` when there is none. */
export interface FleetDiff {
  changes: SpecChange[];
  empty: boolean;
}

/** Every class, in the order a summary lists them. */
export const CHANGE_CLASSES: readonly SpecChangeClass[] = [
  "add-service",
  "remove-service",
  "release-switch",
  "release-added",
  "release-removed",
  "release-edited",
  "replace",
  "scale",
  "live",
];

/** Service fields whose change moves or restarts instances (see the module comment). */
const REPLACE_FIELDS = new Set(["placement", "basePort"]);
/** Service fields handled apart from the generic walk. */
const SPECIAL_FIELDS = new Set(["name", "releases", "release", "replicas"]);
/** Fleet fields that are not settings: `file` is where the text came from, not what it says. */
const IGNORED_FLEET_FIELDS = new Set(["file", "services"]);

/**
 * Compares two resolved fleets. `applied` is what the controller runs; `next` is the candidate.
 * The result names every difference of the resolved model (defaults included: a default changed by
 * a `defaults:` section shows up on each service it reaches).
 */
export function diffFleets(applied: FleetSpec, next: FleetSpec): FleetDiff {
  const changes: SpecChange[] = [];
  for (const key of unionKeys(applied, next)) {
    if (IGNORED_FLEET_FIELDS.has(key)) continue;
    walk(field(applied, key), field(next, key), [key], (path, before, after) => {
      changes.push({
        service: null,
        path: path.join("."),
        class: "live",
        before,
        after,
        detail: `${path.join(".")}: ${show(before)} → ${show(after)} (applies live)`,
      });
    });
  }
  const before = new Map(applied.services.map((service) => [service.name, service]));
  const after = new Map(next.services.map((service) => [service.name, service]));
  for (const service of next.services) {
    const old = before.get(service.name);
    if (old === undefined) changes.push(addService(service));
    else changes.push(...diffService(old, service));
  }
  for (const service of applied.services) {
    if (!after.has(service.name)) changes.push(removeService(service));
  }
  return { changes, empty: changes.length === 0 };
}

/** Counts per class, in {@link CHANGE_CLASSES} order, e.g. `2 live, 1 scale`; "no changes" when empty. */
export function summarizeDiff(diff: FleetDiff): string {
  if (diff.empty) return "no changes";
  const counts = new Map<SpecChangeClass, number>();
  for (const change of diff.changes) counts.set(change.class, (counts.get(change.class) ?? 0) + 1);
  return CHANGE_CLASSES.filter((kind) => counts.has(kind))
    .map((kind) => `${counts.get(kind)} ${kind}`)
    .join(", ");
}

function addService(service: ServiceSpec): SpecChange {
  const port = service.port === undefined ? "" : `, port ${service.port}`;
  return {
    service: service.name,
    path: `services.${service.name}`,
    class: "add-service",
    before: undefined,
    after: service,
    detail: `new service ${service.name}: ${service.replicas} × release ${service.release}${port}`,
  };
}

function removeService(service: ServiceSpec): SpecChange {
  return {
    service: service.name,
    path: `services.${service.name}`,
    class: "remove-service",
    before: service,
    after: undefined,
    detail: `service ${service.name} removed: its ${service.replicas} instance(s) are drained, then stopped`,
  };
}

function diffService(old: ServiceSpec, next: ServiceSpec): SpecChange[] {
  const name = next.name;
  const prefix = ["services", name];
  const changes: SpecChange[] = [];
  const push = (kind: SpecChangeClass, path: string[], before: unknown, after: unknown, detail: string) =>
    changes.push({ service: name, path: path.join("."), class: kind, before, after, detail });

  if (old.release !== next.release) {
    push(
      "release-switch",
      [...prefix, "release"],
      old.release,
      next.release,
      `release ${old.release} → ${next.release} (progressive deploy with analysis)`,
    );
  }
  for (const version of unionKeys(old.releases, next.releases)) {
    const before = old.releases[version];
    const after = next.releases[version];
    const path = [...prefix, "releases", version];
    if (before === undefined && after !== undefined) {
      push("release-added", path, undefined, after, `release ${version} added (${commandLine(after)})`);
    } else if (before !== undefined && after === undefined) {
      push("release-removed", path, before, undefined, `release ${version} removed from the file`);
    } else if (before !== undefined && after !== undefined) {
      const running = version === old.release;
      const why = running
        ? "edited in place while running: a release is immutable, name a new version (or allow an in-place roll)"
        : "edited in place: a release is immutable, name a new version";
      walk(before, after, path, (at, was, now) => {
        const field = at.slice(path.length).join(".");
        push(
          "release-edited",
          at,
          was,
          now,
          `release ${version} ${field}: ${show(was)} → ${show(now)} (${why})`,
        );
      });
    }
  }
  if (old.replicas !== next.replicas) {
    const delta = next.replicas - old.replicas;
    const how = delta > 0 ? `scale up by ${delta}` : `scale down by ${-delta}, draining first`;
    push(
      "scale",
      [...prefix, "replicas"],
      old.replicas,
      next.replicas,
      `replicas ${old.replicas} → ${next.replicas} (${how})`,
    );
  }
  for (const key of unionKeys(old, next)) {
    if (SPECIAL_FIELDS.has(key)) continue;
    const kind: SpecChangeClass = REPLACE_FIELDS.has(key) ? "replace" : "live";
    const effect =
      key === "placement"
        ? "instances whose zone or host changes are replaced"
        : key === "basePort"
          ? "every instance is replaced on its new port"
          : "applies live";
    walk(field(old, key), field(next, key), [...prefix, key], (at, was, now) => {
      const shown = at.slice(prefix.length).join(".");
      push(kind, at, was, now, `${shown}: ${show(was)} → ${show(now)} (${effect})`);
    });
  }
  return changes;
}

/**
 * Calls `found` for every leaf that differs. Plain objects are walked key by key, and so are lists
 * of named entries (datastores, webhooks: `datastores.orders-db.initialVersion`); other arrays and
 * scalars are leaves compared whole (a list's meaning is usually its whole value: deploy steps,
 * placement, a security list).
 */
function walk(
  before: unknown,
  after: unknown,
  path: string[],
  found: (path: string[], before: unknown, after: unknown) => void,
): void {
  if (Array.isArray(before) && Array.isArray(after)) {
    const a = byName(before);
    const b = byName(after);
    // An empty list is an empty set of names when the other side is named.
    if (a !== undefined && b !== undefined && (before.length > 0 || after.length > 0)) {
      for (const key of unionKeys(a, b)) walk(a[key], b[key], [...path, key], found);
      return;
    }
  } else if (isRecord(before) && isRecord(after)) {
    for (const key of unionKeys(before, after)) walk(before[key], after[key], [...path, key], found);
    return;
  }
  if (!deepEqual(before, after)) found(path, before, after);
}

/** A list whose entries all have a distinct string `name`, as a record by name; else undefined. */
function byName(value: unknown[]): Record<string, unknown> | undefined {
  const named: Record<string, unknown> = {};
  for (const item of value) {
    if (!isRecord(item) || typeof item.name !== "string" || item.name in named) return undefined;
    named[item.name] = item;
  }
  return named;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field(value: object, key: string): unknown {
  return (value as Record<string, unknown>)[key];
}

/** `before`'s keys in order, then `after`'s new ones; keys whose value is undefined count as absent. */
function unionKeys(before: object, after: object): string[] {
  const keys = Object.keys(before).filter((key) => field(before, key) !== undefined);
  for (const key of Object.keys(after)) {
    if (field(after, key) !== undefined && !keys.includes(key)) keys.push(key);
  }
  return keys;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = unionKeys(a, b);
    return keys.every((key) => deepEqual(a[key], b[key]));
  }
  return false;
}

/** A value in a detail line: JSON, shortened; `(none)` when absent. */
function show(value: unknown): string {
  if (value === undefined) return "(none)";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function commandLine(release: ReleaseSpec): string {
  return [release.command, ...release.args].join(" ");
}
