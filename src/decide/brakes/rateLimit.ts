/**
 * Sliding-window rate limits on automated actions. An action counts while it is younger than the
 * window: one taken exactly `windowMs` ago has left it.
 */

import type { RateLimitSpec } from "../../spec/model.ts";

/** How much of a rate limit is used at `now`. */
export interface WindowCount {
  used: number;
  max: number;
  windowMs: number;
  /** When one more action will be allowed (the oldest counted one leaves the window); null: now. */
  freeAt: number | null;
}

/**
 * Counts the times in `times` (epoch ms, any order) inside the window that ends at `now`. A time
 * after `now` (the clock stepped back) counts as recent: a clock step never loosens a brake.
 */
export function countInWindow(times: readonly number[], limit: RateLimitSpec, now: number): WindowCount {
  const inside = times.filter((at) => now - at < limit.windowMs).sort((a, b) => a - b);
  const used = inside.length;
  if (used < limit.max) return { used, max: limit.max, windowMs: limit.windowMs, freeAt: null };
  // One more is allowed once used - max + 1 of them have left: the (used - max)-th oldest's turn.
  const freeAt = inside[used - limit.max]! + limit.windowMs;
  return { used, max: limit.max, windowMs: limit.windowMs, freeAt };
}

/** True when one more action fits. */
export function hasRoom(count: WindowCount): boolean {
  return count.used < count.max;
}
