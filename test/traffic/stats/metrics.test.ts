import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { register as globalRegistry, Registry } from "prom-client";
import { TrafficStats } from "../../../src/traffic/stats/index.ts";
import { parseSamples, samplesNamed, sampleValue } from "./promText.ts";

const NOW = 1_700_000_000_000;

describe("TrafficStats Prometheus metrics", () => {
  it("counts attempts per instance and outcome without mixing label sets", async () => {
    const stats = new TrafficStats({ now: () => NOW });
    // Interleaved, so that a cache keyed wrongly would send one series' increments to another.
    const plan: [
      release: string,
      instance: string,
      outcome: "success" | "http-5xx" | "timeout",
      times: number,
    ][] = [
      ["v1", "api-0", "success", 7],
      ["v1", "api-0", "http-5xx", 2],
      ["v1", "api-1", "success", 3],
      ["v2", "api-1", "success", 4],
      ["v2", "api-1", "timeout", 1],
    ];
    for (let round = 0; round < 7; round++) {
      for (const [release, instance, outcome, times] of plan) {
        if (round < times) {
          stats.recordAttempt({ service: "api", release, instance, zone: "zone-a", outcome, latencyMs: 5 });
        }
      }
    }
    stats.recordAttempt({
      service: "web",
      release: "v1",
      instance: "api-0",
      zone: "zone-b",
      outcome: "success",
      latencyMs: 5,
    });

    const samples = parseSamples(await stats.metricsText());
    for (const [release, instance, outcome, times] of plan) {
      assert.equal(
        sampleValue(samples, "homeostat_proxy_attempts_total", {
          service: "api",
          release,
          instance,
          outcome,
        }),
        times,
        `${release} ${instance} ${outcome}`,
      );
    }
    assert.equal(
      sampleValue(samples, "homeostat_proxy_attempts_total", {
        service: "web",
        release: "v1",
        instance: "api-0",
        outcome: "success",
      }),
      1,
    );
    assert.equal(samplesNamed(samples, "homeostat_proxy_attempts_total").length, plan.length + 1);
  });

  it("observes attempt latencies in seconds per release", async () => {
    const stats = new TrafficStats({ now: () => NOW });
    const latencies = [0.8, 3, 30, 700];
    for (const latencyMs of latencies) {
      stats.recordAttempt({
        service: "api",
        release: "v1",
        instance: "api-0",
        zone: "z",
        outcome: "success",
        latencyMs,
      });
    }
    stats.recordAttempt({
      service: "api",
      release: "v2",
      instance: "api-1",
      zone: "z",
      outcome: "reset",
      latencyMs: 12,
    });

    const samples = parseSamples(await stats.metricsText());
    const v1 = { service: "api", release: "v1" };
    const name = "homeostat_proxy_request_duration_seconds";
    assert.equal(sampleValue(samples, `${name}_count`, v1), 4);
    const sum = sampleValue(samples, `${name}_sum`, v1)!;
    assert.ok(Math.abs(sum - 0.7338) < 1e-9, `sum ${sum}`);
    assert.equal(sampleValue(samples, `${name}_bucket`, { ...v1, le: "0.001" }), 1);
    assert.equal(sampleValue(samples, `${name}_bucket`, { ...v1, le: "0.005" }), 2);
    assert.equal(sampleValue(samples, `${name}_bucket`, { ...v1, le: "0.05" }), 3);
    assert.equal(sampleValue(samples, `${name}_bucket`, { ...v1, le: "0.5" }), 3);
    assert.equal(sampleValue(samples, `${name}_bucket`, { ...v1, le: "1" }), 4);
    assert.equal(sampleValue(samples, `${name}_bucket`, { ...v1, le: "+Inf" }), 4);
    assert.equal(sampleValue(samples, `${name}_count`, { service: "api", release: "v2" }), 1);
  });

  it("counts client requests by criticality and result", async () => {
    const stats = new TrafficStats({ now: () => NOW });
    const base = { service: "api", status: 200, latencyMs: 3, attempts: 1, retried: false };
    for (let i = 0; i < 3; i++) stats.recordRequest({ ...base, criticality: "critical", result: "ok" });
    stats.recordRequest({ ...base, criticality: "default", result: "ok" });
    stats.recordRequest({ ...base, criticality: "sheddable", result: "shed", status: 503 });
    stats.recordRequest({ ...base, criticality: "sheddable", result: "shed", status: 503 });
    stats.recordRequest({ ...base, criticality: "default", result: "no-upstream", status: 503 });

    const samples = parseSamples(await stats.metricsText());
    const value = (criticality: string, result: string) =>
      sampleValue(samples, "homeostat_proxy_requests_total", { service: "api", criticality, result });
    assert.equal(value("critical", "ok"), 3);
    assert.equal(value("default", "ok"), 1);
    assert.equal(value("sheddable", "shed"), 2);
    assert.equal(value("default", "no-upstream"), 1);
    assert.equal(value("critical", "shed"), undefined);
    assert.equal(samplesNamed(samples, "homeostat_proxy_requests_total").length, 4);
  });

  it("counts sheds, ejections by reason and hedges, and shows ejection and panic state as gauges", async () => {
    const stats = new TrafficStats({ now: () => NOW });
    stats.recordShed("api", "sheddable", "queue-full");
    stats.recordShed("api", "sheddable", "queue-full");
    stats.recordShed("api", "default", "queue-timeout");
    stats.recordEjection("api", "api-0", true);
    stats.recordEjection("api", "api-0", false);
    stats.recordEjection("api", "api-0", true);
    stats.recordEjection("api", "api-1", true);
    stats.recordEjection("api", "api-1", false);
    stats.recordEjection("api", "api-2", true, "stalled");
    stats.recordEjection("api", "api-2", false, "stalled");
    stats.recordHedge("api", false);
    stats.recordHedge("api", false);
    stats.recordHedge("api", true);
    stats.recordPanic("api", true);
    stats.recordPanic("web", true);
    stats.recordPanic("web", false);

    const samples = parseSamples(await stats.metricsText());
    const shed = (criticality: string, reason: string) =>
      sampleValue(samples, "homeostat_proxy_shed_total", { service: "api", criticality, reason });
    assert.equal(shed("sheddable", "queue-full"), 2);
    assert.equal(shed("default", "queue-timeout"), 1);
    const reason = "consecutive-failures";
    const ejections = (instance: string) =>
      sampleValue(samples, "homeostat_proxy_ejections_total", { service: "api", instance, reason });
    assert.equal(ejections("api-0"), 2);
    assert.equal(ejections("api-1"), 1);
    const ejected = (instance: string, why = reason) =>
      sampleValue(samples, "homeostat_proxy_ejected", { service: "api", instance, reason: why });
    assert.equal(ejected("api-0"), 1);
    assert.equal(ejected("api-1"), 0);
    assert.equal(ejected("api-2", "stalled"), 0, "a stall that ended is a 0, by its own reason");
    assert.equal(
      sampleValue(samples, "homeostat_proxy_ejections_total", {
        service: "api",
        instance: "api-2",
        reason: "stalled",
      }),
      1,
    );
    assert.equal(sampleValue(samples, "homeostat_proxy_hedges_total", { service: "api" }), 2);
    assert.equal(sampleValue(samples, "homeostat_proxy_hedges_won_total", { service: "api" }), 1);
    assert.equal(sampleValue(samples, "homeostat_proxy_in_panic", { service: "api" }), 1);
    assert.equal(sampleValue(samples, "homeostat_proxy_in_panic", { service: "web" }), 0);
  });

  it("uses a registry of its own, or the one given, never the global one", async () => {
    const first = new TrafficStats();
    const second = new TrafficStats();
    const given = new Registry();
    const third = new TrafficStats({ registry: given });
    for (const stats of [first, second, third]) {
      stats.recordRequest({
        service: "api",
        criticality: "default",
        result: "ok",
        status: 200,
        latencyMs: 1,
        attempts: 1,
        retried: false,
      });
    }
    first.recordPanic("api", true);

    assert.equal(third.registry, given);
    assert.notEqual(first.registry, second.registry);
    assert.equal(globalRegistry.getSingleMetric("homeostat_proxy_requests_total"), undefined);
    const inPanic = async (stats: TrafficStats) =>
      sampleValue(parseSamples(await stats.metricsText()), "homeostat_proxy_in_panic", { service: "api" });
    assert.equal(await inPanic(first), 1);
    assert.equal(await inPanic(second), 0);
    assert.ok(
      (await given.metrics()).includes(
        'homeostat_proxy_requests_total{service="api",criticality="default",result="ok"} 1',
      ),
    );
    assert.match(first.contentType, /^text\/plain/);
  });
});
