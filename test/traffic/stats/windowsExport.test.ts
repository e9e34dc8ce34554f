/**
 * The controller's mirror of the data plane's decision windows: an export imported elsewhere
 * answers the same windows, importing it again changes nothing, and a partial export (the seconds
 * that changed) brings the mirror up to date.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { TrafficStats } from "../../../src/traffic/stats/index.ts";

function clock(start: number) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test("an imported export answers the same windows as the original, and importing twice changes nothing", () => {
  const time = clock(1_800_000_000_000);
  const source = new TrafficStats({ now: time.now });
  for (let i = 0; i < 50; i++) {
    source.recordAttempt({
      service: "api",
      release: i % 5 === 0 ? "v2" : "v1",
      instance: `api-${i % 3}`,
      zone: "zone-a",
      outcome: i % 10 === 0 ? "http-5xx" : "success",
      latencyMs: 5 + i,
    });
    source.recordRequest({
      service: "api",
      criticality: i % 4 === 0 ? "sheddable" : "default",
      result: i % 10 === 0 ? "upstream-5xx" : "ok",
      status: i % 10 === 0 ? 500 : 200,
      latencyMs: 6 + i,
      attempts: 1,
      retried: false,
    });
    if (i % 10 === 9) time.advance(1_000);
  }
  const mirror = new TrafficStats({ now: time.now });
  const nowSecond = Math.floor(time.now() / 1000);
  const exported = source.exportWindows(nowSecond - 300, nowSecond);
  mirror.importWindows(exported);
  mirror.importWindows(exported);
  for (const query of [
    { service: "api", windowMs: 60_000 },
    { service: "api", release: "v2", windowMs: 60_000 },
    { service: "api", instance: "api-1", windowMs: 3_000 },
  ]) {
    assert.deepEqual(mirror.window(query), source.window(query), JSON.stringify(query));
  }
  assert.deepEqual(
    mirror.criticalityRates("api", 10_000, "window"),
    source.criticalityRates("api", 10_000, "window"),
  );
  assert.equal(mirror.window({ service: "api", windowMs: 60_000 }).requests, 50);
});

test("a partial export of the seconds that changed brings the mirror up to date", () => {
  const time = clock(1_800_000_000_000);
  const source = new TrafficStats({ now: time.now });
  const mirror = new TrafficStats({ now: time.now });
  const record = () =>
    source.recordRequest({
      service: "api",
      criticality: "default",
      result: "ok",
      status: 200,
      latencyMs: 3,
      attempts: 1,
      retried: false,
    });
  record();
  let second = Math.floor(time.now() / 1000);
  mirror.importWindows(source.exportWindows(second - 300, second));
  // The current second keeps filling after the first report: it is sent again, whole.
  record();
  time.advance(1_000);
  record();
  const last = second;
  second = Math.floor(time.now() / 1000);
  mirror.importWindows(source.exportWindows(last, second));
  assert.equal(mirror.window({ service: "api", windowMs: 10_000 }).requests, 3);
  assert.deepEqual(
    mirror.window({ service: "api", windowMs: 10_000 }),
    source.window({ service: "api", windowMs: 10_000 }),
  );
});
