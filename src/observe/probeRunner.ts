/**
 * Runs one probe check against one instance, whatever its transport.
 */

import type { ProbeCheck } from "../spec/model.ts";
import { execProbe } from "./execProbe.ts";
import { httpProbe } from "./httpProbe.ts";
import type { ProbeOutcome, ProbeTarget } from "./probeTarget.ts";
import { tcpProbe } from "./tcpProbe.ts";

export type { ProbeOutcome, ProbeTarget } from "./probeTarget.ts";

/**
 * Backstop beyond each transport's own timeout: if a transport ever failed to settle, the probe
 * still resolves this long after `timeoutMs`, so a scheduler can never wedge on one run.
 */
const HARD_DEADLINE_SLACK_MS = 1000;

/**
 * Run `check` against `target`, giving up after `timeoutMs`. Always resolves (never rejects),
 * within `timeoutMs` plus timer latency; a failure carries a short `detail`.
 */
export async function runProbe(
  check: ProbeCheck,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const started = performance.now();
  let backstop: NodeJS.Timeout | undefined;
  const deadline = new Promise<ProbeOutcome>((resolve) => {
    backstop = setTimeout(
      () =>
        resolve({
          ok: false,
          durationMs: performance.now() - started,
          detail: `timeout after ${timeoutMs}ms`,
        }),
      timeoutMs + HARD_DEADLINE_SLACK_MS,
    );
    backstop.unref();
  });
  try {
    return await Promise.race([runTransport(check, target, timeoutMs), deadline]);
  } catch (error) {
    // E.g. an invalid port throws synchronously from net/http: report it as a failed probe.
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, durationMs: performance.now() - started, detail };
  } finally {
    clearTimeout(backstop);
  }
}

function runTransport(check: ProbeCheck, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  switch (check.kind) {
    case "http":
      return httpProbe(check, target, timeoutMs);
    case "tcp":
      return tcpProbe(check, target, timeoutMs);
    case "exec":
      return execProbe(check, target, timeoutMs);
  }
}
