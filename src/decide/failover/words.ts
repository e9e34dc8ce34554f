/** Small renderings shared by the failover reasons, so every message spells numbers the same way. */

/** 0.725 → "72.5 %", 0.8 → "80 %": one decimal at most, so a value just over a ceiling never reads as equal to it. */
export function percent(utilization: number): string {
  if (!Number.isFinite(utilization)) return "∞ %";
  return `${Number((utilization * 100).toFixed(1))} %`;
}

/** 12.345 → "12.35 rps". */
export function rps(value: number): string {
  return `${Number(value.toFixed(2))} rps`;
}

/** 48_000 → "48 s", 299_000 → "4 min 59 s": exact enough to count down a wait with. */
export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Number((ms / 1_000).toFixed(1))} s`;
  const seconds = Math.round(ms / 1_000);
  const rest = seconds % 60;
  return `${Math.floor(seconds / 60)} min${rest === 0 ? "" : ` ${rest} s`}`;
}

/** "1 instance", "3 instances". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** Rates shed or moved are rounded up to the next 0.01 rps: rounding down could leave a target a hair over its ceiling. */
export function ceilRps(value: number): number {
  return Math.ceil(value * 100 - 1e-6) / 100;
}

/** Rounds away the float noise of sums (0.1 + 0.2) without hiding anything a person would read. */
export function clean(value: number): number {
  if (!Number.isFinite(value)) return value;
  return Math.round(value * 1e9) / 1e9;
}
