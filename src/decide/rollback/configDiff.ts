/** One difference between two JSON values, at a JSON path such as `config.pool.size` or `config.hosts[0]`. */
export interface ValueDifference {
  path: string;
  /** `undefined`: absent on that side. */
  before: unknown;
  after: unknown;
}

/**
 * Deep difference of two JSON-like values, leaf by leaf. Objects are compared key by key (sorted,
 * so the order is stable), arrays index by index; a change of shape (object ↔ array ↔ scalar) is
 * one difference at that path rather than a cascade of them.
 */
export function diffValues(before: unknown, after: unknown, path: string): ValueDifference[] {
  const differences: ValueDifference[] = [];
  collect(before, after, path, differences);
  return differences;
}

function collect(before: unknown, after: unknown, path: string, out: ValueDifference[]): void {
  if (Object.is(before, after)) return;
  if (Array.isArray(before) && Array.isArray(after)) {
    const length = Math.max(before.length, after.length);
    for (let i = 0; i < length; i++) collect(before[i], after[i], `${path}[${i}]`, out);
    return;
  }
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    for (const key of keys) collect(before[key], after[key], childPath(path, key), out);
    return;
  }
  out.push({ path, before, after });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `config.pool` for plain keys, `config["log level"]` for keys that are not identifiers. */
function childPath(path: string, key: string): string {
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}
