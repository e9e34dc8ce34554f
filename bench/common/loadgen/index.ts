/**
 * The benches' one open-loop load generator: `openloop.c` (native; see it for the schedule and
 * what is recorded), `native.ts` (build, run, decode) and `summary.ts` (offered vs achieved rate,
 * lateness from the due time to the write, latency from the due time, validity).
 */

export * from "./native.ts";
export * from "./summary.ts";
