/**
 * A real instance process dies under traffic: its in-flight and new attempts fail (reset,
 * connect errors), idempotent requests move to the survivor, and the dead one is ejected.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { startDemoApp } from "../../examples/demoApp.ts";
import { waitFor } from "../../helpers/waitFor.ts";
import { endpointOf, type Reply, send, startProxy, traffic } from "./kit.ts";

test("a killed instance costs no GET: attempts move to the survivor and it is ejected", async (t) => {
  const apps = await Promise.all(
    ["app-0", "app-1"].map((name) => startDemoApp(t, { args: ["--port", "0", "--name", name] })),
  );
  const running = await startProxy(t, {
    traffic: traffic({
      outlier: { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionPercent: 50 },
      retries: { budget: { minPerSecond: 100 } },
    }),
    endpoints: apps.map((app, i) => endpointOf({ name: `app-${i}`, port: app.port })),
  });

  // Steady traffic (some of it slow, so requests are in flight when the process dies).
  const replies: Reply[] = [];
  let stop = false;
  const load = Promise.all(
    Array.from({ length: 6 }, async (_, worker) => {
      while (!stop)
        replies.push(await send(running.client, { path: worker % 2 === 0 ? "/work?ms=50" : "/" }));
    }),
  );
  await waitFor(() => replies.filter((r) => r.headers["x-homeostat-instance"] === "app-0").length >= 10, {
    what: "traffic on app-0",
  });
  apps[0]!.child.kill("SIGKILL");
  await apps[0]!.exited;
  const killedAt = replies.length;

  await waitFor(
    () =>
      (running.proxy.state().endpoints as { instance: string; ejected: boolean }[]).some(
        (e) => e.instance === "app-0" && e.ejected,
      ),
    { what: "app-0 ejected", timeoutMs: 20_000 },
  );
  await waitFor(() => replies.length >= killedAt + 100, { what: "more traffic after the crash" });
  stop = true;
  await load;

  assert.deepEqual(
    replies.filter((r) => r.status !== 200).map((r) => [r.status, r.body]),
    [],
    "no client saw the crash",
  );
  const after = replies.slice(killedAt + 20);
  assert.ok(after.every((r) => r.headers["x-homeostat-instance"] === "app-1"));
  assert.ok(
    replies.some((r) => r.headers["x-homeostat-attempts"] === "2"),
    "some requests were retried",
  );
});
