/**
 * When a failed attempt may be tried again (the budget check comes last and is the caller's: it
 * consumes a token, so it is only asked once everything else says yes).
 *
 * - A retry must be safe: the method is idempotent and the body can be sent again; or the
 *   upstream provably never received the request (connect error) and the body can be sent again.
 * - A retry must be useful: the failure is transient (connect error, reset, per-try timeout,
 *   502/503/504). A 500 is an application error: the same request will most likely fail the same
 *   way on another instance, and retrying it only multiplies load on a struggling service.
 * - An upstream that shed the request (`x-homeostat-shed`) is overloaded: retrying it elsewhere
 *   turns one layer's overload into the next one's (Google SRE: retries multiply across layers).
 */

import type { AttemptOutcome } from "../contracts.ts";

/** Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** What went wrong with one attempt (successful ones are never retried). */
export interface AttemptFailure {
  outcome: Exclude<AttemptOutcome, "success">;
  /** For `http-5xx`. */
  status?: number;
  /** The upstream said it shed the request itself. */
  shedByUpstream?: boolean;
  /**
   * We cancelled the attempt ourselves: another attempt of the same request (a hedge) answered
   * first. Says nothing about the instance: never reported as its failure, never retried.
   */
  cancelled?: boolean;
}

export interface RetryQuestion {
  method: string;
  /** The request body can be sent again (none, or buffered up front). */
  replayable: boolean;
  /** Attempts made so far, including the one that just failed. */
  attempts: number;
  maxAttempts: number;
  failure: AttemptFailure;
}

/** Whether this failure may be retried, budget aside. */
export function mayRetry(q: RetryQuestion): boolean {
  if (q.attempts >= q.maxAttempts || !q.replayable) return false;
  const f = q.failure;
  // Never reached the upstream: safe for any method.
  if (f.outcome === "connect-error") return true;
  if (!isIdempotent(q.method)) return false;
  if (f.outcome === "reset" || f.outcome === "timeout") return true;
  return !f.shedByUpstream && (f.status === 502 || f.status === 503 || f.status === 504);
}
