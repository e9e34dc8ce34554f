/**
 * The three instances of the demo app that nginx and HAProxy sit in front of, started by the bench
 * (no supervisor: a hung one stays hung until the bench sends SIGCONT), and the SIGSTOP / SIGCONT
 * that hang one for a while, whoever runs it.
 */

import { waitFor } from "../../test/helpers/waitFor.ts";
import { epochNow } from "../failover/haproxyFleet.ts";
import { type ProcessIdentity, signalIfRunning } from "../foundation/processes.ts";

export { epochNow };

/**
 * Processes the bench has stopped and not yet continued: a teardown step continues them, so a
 * failure half-way never leaves a stopped process behind (the ledger's sweep kills the rest).
 */
export class Hangs {
  readonly #stopped = new Set<ProcessIdentity>();

  /**
   * SIGSTOP `target` now and SIGCONT it after `ms` (if it still runs: a supervisor may have
   * replaced it meanwhile). Resolves once the SIGCONT was due, with both times (epoch ms).
   */
  async hang(
    target: ProcessIdentity,
    ms: number,
  ): Promise<{ stoppedAt: number; continuedAt: number; continued: boolean }> {
    const stoppedAt = epochNow();
    if (!signalIfRunning(target, "SIGSTOP")) throw new Error(`pid ${target.pid} is already gone`);
    this.#stopped.add(target);
    // The fault's length: the point is to let the time pass.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + ms - epochNow())));
    const continuedAt = epochNow();
    const continued = signalIfRunning(target, "SIGCONT");
    this.#stopped.delete(target);
    return { stoppedAt, continuedAt, continued };
  }

  continueAll(): void {
    for (const target of this.#stopped) signalIfRunning(target, "SIGCONT");
    this.#stopped.clear();
  }
}

/** The three demo-app instances behind nginx and HAProxy: the failover bench's, unchanged. */
export { BenchInstances as Upstreams } from "../failover/haproxyFleet.ts";

/** The instance name in a demo-app answer (`{"name":…}`), or null. */
async function answeredBy(url: string): Promise<string | null> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => null);
  if (response === null) return null;
  const body = await response.text().catch(() => "");
  if (response.status !== 200) return null;
  try {
    return (JSON.parse(body) as { name?: string }).name ?? null;
  } catch {
    return null;
  }
}

/**
 * Wait until requests through `port` are answered by every one of `names` (round robin: a few
 * rounds of requests in a row), so that a trial starts with every instance back in rotation.
 */
export async function waitServedByAll(port: number, names: string[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      const seen = new Set<string>();
      for (let i = 0; i < names.length * 3; i++) {
        const name = await answeredBy(`http://127.0.0.1:${port}/work?ms=0`);
        if (name !== null) seen.add(name);
      }
      return names.every((n) => seen.has(n));
    },
    { timeoutMs, intervalMs: 200, what: `every instance answering through port ${port}` },
  );
}
