/** Small renderings shared by the checks' messages. */

export function isoTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/** 0.0123 → "1.23 %". */
export function percent(rate: number): string {
  return `${(rate * 100).toFixed(2)} %`;
}

export function durationMs(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${Number((ms / 1_000).toFixed(1))} s`;
  return `${Number((ms / 60_000).toFixed(1))} min`;
}

/** A JSON value as it appears in a finding; `undefined` (absent) is spelt out. */
export function jsonValue(value: unknown): string {
  return value === undefined ? "(absent)" : JSON.stringify(value);
}

/** "a, b, c and 2 more": keeps one-sentence details short when many things are listed. */
export function listSome(items: string[], max = 5): string {
  if (items.length <= max) return items.join(", ");
  return `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}
