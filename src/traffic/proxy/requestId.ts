/**
 * `x-request-id` values for requests that come without one: UUID-shaped (8-4-4-4-12 hex, version
 * and variant bits of a v4), 74 random bits drawn once per process followed by a 48-bit counter.
 * Unique within a process by construction and across processes by the random part, at the cost of
 * one number-to-string conversion per request instead of a random UUID's 16 random bytes.
 */

import { randomBytes } from "node:crypto";

const COUNTER_SPAN = 2 ** 48;

function randomPrefix(): string {
  const hex = randomBytes(10).toString("hex"); // 20 hex digits, 19 used
  const variant = ((Number.parseInt(hex[12]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(16, 19)}-`;
}

let prefix = randomPrefix();
let counter = 0;

/** A fresh request id. */
export function newRequestId(): string {
  if (counter >= COUNTER_SPAN - 1) {
    // After 2^48 ids (decades at a million a second), a new random part.
    prefix = randomPrefix();
    counter = 0;
  }
  counter++;
  // COUNTER_SPAN + counter has 13 hex digits, the first a 1: the other 12 are the zero-padded counter.
  return prefix + (COUNTER_SPAN + counter).toString(16).slice(1);
}
