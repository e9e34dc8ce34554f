/** Plain-text rendering for the CLI: aligned tables, durations, times. No colours (pipes stay clean). */

import { printable } from "../lib/printable.ts";

/** Columns aligned; every cell made {@link printable}, so a value cannot forge a row or drive the terminal. */
export function table(headers: string[], rawRows: string[][]): string {
  const rows = rawRows.map((r) => r.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** 850ms, 2.4s, 3m12s, 1h05m. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const totalSeconds = Math.round(ms / 1000);
  if (ms < 3_600_000)
    return `${Math.floor(totalSeconds / 60)}m${String(totalSeconds % 60).padStart(2, "0")}s`;
  const minutes = Math.floor(totalSeconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** Local wall-clock time with milliseconds: 14:03:22.418 */
export function clock(epochMs: number | null | undefined): string {
  if (epochMs === null || epochMs === undefined) return "-";
  const d = new Date(epochMs);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "3s ago" relative to now. */
export function ago(epochMs: number | null | undefined, now: number): string {
  if (epochMs === null || epochMs === undefined) return "-";
  return `${duration(Math.max(0, now - epochMs))} ago`;
}
