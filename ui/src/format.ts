/**
 * Times as people read them, for every view: a duration in the largest unit that keeps it short,
 * a wall-clock time to the second. Apart from the model so that it stays what the API says.
 */

/** Milliseconds as people read them: 80 ms, 1.4 s, 2 min 5 s. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A wall-clock time, local, to the second. */
export function clock(at: number | null | undefined): string {
  if (at === null || at === undefined) return "—";
  return new Date(at).toLocaleTimeString([], { hour12: false });
}
