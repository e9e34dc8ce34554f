/**
 * Runs one probe check against one instance, whatever its transport.
 */

import type { ProbeCheck } from "../spec/model.ts";
import { execProbe } from "./execProbe.ts";
import { httpProbe } from "./httpProbe.ts";
import type { ProbeConnections } from "./probeConnections.ts";
import type { ProbeOutcome, ProbeTarget } from "./probeTarget.ts";
import { tcpProbe } from "./tcpProbe.ts";

export type { ProbeOutcome, ProbeTarget } from "./probeTarget.ts";

/**
 * Run `check` against `target`, giving up after `timeoutMs`. Always resolves (never rejects),
 * within `timeoutMs` plus timer latency; a failure carries a short `detail`. `connections`: the
 * instance run's kept-alive connections, which an HTTP check reuses (probeConnections.ts);
 * without, it connects afresh. Every transport settles through `settleOnce` (probeTarget.ts),
 * whose timeout resolves the run whatever its hooks do: no second deadline is needed here.
 */
export async function runProbe(
  check: ProbeCheck,
  target: ProbeTarget,
  timeoutMs: number,
  connections?: ProbeConnections,
): Promise<ProbeOutcome> {
  const started = performance.now();
  try {
    return await runTransport(check, target, timeoutMs, connections);
  } catch (error) {
    // E.g. an invalid port throws synchronously from net/http: report it as a failed probe.
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, durationMs: performance.now() - started, detail };
  }
}

function runTransport(
  check: ProbeCheck,
  target: ProbeTarget,
  timeoutMs: number,
  connections: ProbeConnections | undefined,
): Promise<ProbeOutcome> {
  switch (check.kind) {
    case "http":
      return httpProbe(check, target, timeoutMs, connections);
    case "tcp":
      return tcpProbe(check, target, timeoutMs);
    case "exec":
      return execProbe(check, target, timeoutMs);
  }
}
