/**
 * Exec probe: run a command; exit status 0 passes.
 */

import { spawn } from "node:child_process";
import type { ProbeCheck } from "../spec/model.ts";
import { describeIoError, type ProbeOutcome, type ProbeTarget, settleOnce } from "./probeTarget.ts";

type ExecCheck = Extract<ProbeCheck, { kind: "exec" }>;

/**
 * Run `check.command` with `check.args` (no shell) in `target.cwd`, with the controller's
 * environment overlaid by `target.env`. Output is discarded. On timeout the command's whole
 * process group gets SIGKILL (a shell script's children included) and the probe resolves at
 * once, without waiting for the exit. Never rejects.
 */
export function execProbe(check: ExecCheck, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return settleOnce(timeoutMs, (finish) => {
    // Own process group, so a timeout can kill everything the command started, not just its pid.
    const child = spawn(check.command, check.args, {
      cwd: target.cwd,
      env: { ...process.env, ...target.env },
      stdio: "ignore",
      detached: true,
    });
    child.on("error", (error) => finish(false, describeIoError(error)));
    // "exit", not "close": a grandchild holding inherited descriptors must not delay the verdict.
    child.on("exit", (code, signal) => {
      if (code === 0) finish(true);
      else finish(false, code !== null ? `exit ${code}` : `signal ${signal}`);
    });
    return { onTimeout: () => killGroup(child.pid) };
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone: nothing to kill.
  }
}
