/** The controller's metrics read from the store: each recovery phase counted once per incident. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { ControllerMetrics } from "../../src/controller/controllerMetrics.ts";
import { StateStore } from "../../src/store/index.ts";
import { tempStateDir } from "../store/tempStateDir.ts";

test("an incident's detection, mitigation, stabilization and verification are observed once each; open incidents by service", async (t) => {
  const store = StateStore.open(tempStateDir(t));
  const metrics = new ControllerMetrics(store);
  t.after(() => {
    metrics.close();
    store.close();
  });
  const opened = store.openIncident({
    service: "api",
    instance: "api-0",
    kind: "exited",
    reason: "exited",
    detectedAt: 10_000,
    ttdMs: 250,
  });
  store.addIncidentEvent(opened.id, { at: 10_000, phase: "detected", detail: "x" });
  store.openIncident({
    service: "web",
    instance: "web-1",
    kind: "exited",
    reason: "exited",
    detectedAt: 10_000,
  });
  let text = (await metrics.exposition()).text;
  assert.match(text, /^homeostat_controller_open_incidents\{service="api"\} 1$/m);
  assert.match(text, /^homeostat_controller_open_incidents\{service="web"\} 1$/m);
  store.updateIncident(opened.id, { mitigatedAt: 11_500, ttrMs: 1_500 });
  store.addIncidentEvent(opened.id, { at: 11_500, phase: "mitigated", detail: "x" });
  // Closed by verification, then the timeline step is written: no second count.
  store.updateIncident(opened.id, {
    status: "closed",
    closedAt: 14_000,
    stabilizedAt: 14_000,
    verifiedAt: 14_000,
  });
  store.addIncidentEvent(opened.id, { at: 14_000, phase: "verified", detail: "x" });
  metrics.reconcilePass(0.002);
  metrics.passSkipped();
  metrics.passSkipped();
  metrics.action("start", "ok");
  metrics.action("start", "failed");
  metrics.delivery("ops", "delivered");
  metrics.streamClients(1);
  text = (await metrics.exposition()).text;
  const series = (name: string) =>
    new RegExp(`^${name.replaceAll("{", "\\{").replaceAll("}", "\\}")} (\\S+)$`, "m").exec(text)?.[1];
  assert.equal(series('homeostat_controller_time_to_detect_seconds_count{service="api"}'), "1");
  assert.equal(series('homeostat_controller_time_to_detect_seconds_sum{service="api"}'), "0.25");
  assert.equal(series('homeostat_controller_time_to_mitigate_seconds_count{service="api"}'), "1");
  assert.equal(series('homeostat_controller_time_to_mitigate_seconds_sum{service="api"}'), "1.5");
  assert.equal(series('homeostat_controller_time_to_stabilize_seconds_sum{service="api"}'), "4");
  assert.equal(series('homeostat_controller_time_to_verify_seconds_count{service="api"}'), "1");
  assert.equal(series('homeostat_controller_time_to_verify_seconds_sum{service="api"}'), "4");
  assert.equal(
    series('homeostat_controller_time_to_detect_seconds_count{service="web"}'),
    undefined,
    "no TTD without a good observation",
  );
  assert.doesNotMatch(text, /open_incidents\{service="api"\}/);
  assert.equal(series("homeostat_controller_reconcile_duration_seconds_count"), "1");
  assert.equal(series("homeostat_controller_reconcile_skipped_total"), "2");
  assert.equal(series('homeostat_controller_actions_total{type="start",outcome="failed"}'), "1");
  assert.equal(
    series('homeostat_controller_webhook_deliveries_total{webhook="ops",outcome="delivered"}'),
    "1",
  );
  assert.equal(series("homeostat_controller_stream_clients"), "1");
});

test("probes run are read from the prober's counters at scrape time, by kind and outcome", async (t) => {
  const store = StateStore.open(tempStateDir(t));
  const metrics = new ControllerMetrics(store);
  t.after(() => {
    metrics.close();
    store.close();
  });
  assert.doesNotMatch((await metrics.exposition()).text, /^homeostat_controller_probes_total\{/m);
  const counts = {
    startup: { ok: 1, failed: 0 },
    readiness: { ok: 40, failed: 2 },
    liveness: { ok: 41, failed: 0 },
  };
  metrics.probeCounts(() => counts);
  let text = (await metrics.exposition()).text;
  assert.match(text, /^homeostat_controller_probes_total\{kind="readiness",outcome="ok"\} 40$/m);
  assert.match(text, /^homeostat_controller_probes_total\{kind="readiness",outcome="failed"\} 2$/m);
  assert.match(text, /^homeostat_controller_probes_total\{kind="startup",outcome="ok"\} 1$/m);
  counts.liveness.ok = 100;
  text = (await metrics.exposition()).text;
  assert.match(text, /^homeostat_controller_probes_total\{kind="liveness",outcome="ok"\} 100$/m);
});
