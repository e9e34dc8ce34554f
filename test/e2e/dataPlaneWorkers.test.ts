/**
 * Several data-plane workers share each service port (SO_REUSEPORT): connections are spread over
 * them, each serves the same snapshot with its share of the per-instance limits, one of them
 * dying leaves the others serving while it is restarted, and a planned restart hands over every
 * worker without a failed request.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { Agent, request } from "undici";
import { isProcessAlive } from "../../src/lib/procStat.ts";
import { apiFleetOfThree, readyStatus, type StatusDoc, sandboxesCleanedAfter } from "../helpers/e2e.ts";
import { failures, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

interface WorkerStatus {
  worker: number;
  pid: number | null;
  connected: boolean;
  restarts: number;
  generation: number;
}
type Status = StatusDoc & { dataPlane?: { connected: boolean; workers?: WorkerStatus[] } };

test("two workers: both serve the port with their share of the limits; one killed, the other serves while it comes back", async () => {
  const box = await newSandbox();
  const { file, port } = await apiFleetOfThree(box, "      limits: { maxConcurrentPerInstance: 10 }");
  box.up(file, ["--data-plane-workers", "2"]);
  const status = await readyStatus<Status>(
    box,
    3,
    (s) => s.dataPlane?.connected === true && s.dataPlane.workers?.length === 2,
  );
  const [first, second] = status.dataPlane!.workers!;
  assert.notEqual(first!.pid, second!.pid);

  // Connections are spread by the kernel: with fresh connections, both workers admit requests.
  const admittedBy = async (): Promise<number[]> => {
    const traffic = await box.get<{
      services: { api: { workers: { worker: number; admission: { admitted: Record<string, number> } }[] } };
    }>("/v1/traffic");
    return traffic.services.api.workers.map((w) =>
      Object.values(w.admission.admitted).reduce((a, b) => a + b, 0),
    );
  };
  await waitFor(
    async () => {
      for (let i = 0; i < 20; i++) {
        const agent = new Agent({ connections: 1, pipelining: 1 });
        try {
          const response = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent });
          await response.body.text();
        } finally {
          await agent.close();
        }
      }
      const admitted = await admittedBy();
      return admitted.length === 2 && admitted.every((n) => n > 0);
    },
    { timeoutMs: 20_000, what: "both workers admitting requests" },
  );
  const traffic = await box.get<{
    services: { api: { workers: { worker: number; limits: { maxConcurrentPerInstance: number } }[] } };
  }>("/v1/traffic");
  assert.deepEqual(
    traffic.services.api.workers.map((w) => w.limits.maxConcurrentPerInstance),
    [5, 5],
    "each worker enforces half of the per-instance cap",
  );

  // One worker dies under load: the kernel sends new connections to the other; it comes back.
  const load = steadyLoad({ port, rate: 200, connections: 10 });
  try {
    await waitFor(() => load.outcomes.length >= 200, { timeoutMs: 20_000, what: "load before the kill" });
    process.kill(second!.pid!, "SIGKILL");
    const back = await waitFor(
      async () => {
        const s = await box.get<Status>("/v1/status");
        const w = s.dataPlane?.workers?.[1];
        return w?.connected === true && w.restarts === 1 && w.pid !== second!.pid ? w : null;
      },
      { timeoutMs: 15_000, what: "worker 1 restarted" },
    );
    assert.ok(isProcessAlive(back.pid!, null));
    assert.ok(isProcessAlive(first!.pid!, null), "worker 0 was not touched");
    const killedAt = Date.now();
    await waitFor(() => load.outcomes.some((o) => o.sentAt > killedAt + 1_000), {
      what: "load after the restart",
    });
    // Requests in flight in the killed worker (and connections it held) fail; nothing else does.
    const failed = failures(load.outcomes);
    assert.ok(
      failed.length <= 10,
      `at most the killed worker's connections fail (${failed.length}): ${failed.join("; ")}`,
    );

    // A planned restart hands over both workers, one after the other: nothing fails.
    const mark = Date.now();
    const restart = await box.api("POST", "/v1/dataplane/restart");
    const body = (await restart.json()) as { workers: { worker: number; from: number; to: number }[] };
    assert.equal(restart.status, 200, JSON.stringify(body));
    assert.equal(body.workers.length, 2);
    await waitFor(() => body.workers.every((w) => !isProcessAlive(w.from, null)), {
      timeoutMs: 20_000,
      what: "both old workers drained and gone",
    });
    await waitFor(() => load.outcomes.some((o) => o.sentAt > Date.now() - 200), {
      what: "load after the handover",
    });
    assert.deepEqual(
      failures(load.between(mark, Date.now())),
      [],
      "no request failed across the planned restart",
    );
  } finally {
    await load.stop();
  }
});
