import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { describe, it } from "node:test";
import {
  HaproxyLogReceiver,
  lineOutcome,
  type ParsedLine,
  parseHaproxyLogLine,
} from "../../../src/dataplane/haproxy/logReceiver.ts";
import { HomeostatError } from "../../../src/errors.ts";
import type { AttemptOutcome } from "../../../src/traffic/contracts.ts";
import { TrafficStats } from "../../../src/traffic/stats/index.ts";
import { waitFor } from "../../helpers/waitFor.ts";

/**
 * Lines as HAProxy 2.6.12 sent them for each case (captured with the contract's log-format), but
 * for `clientGone` (status -1: nothing was sent) and the `+` (redispatched) of `connectRefused`.
 */
const LINES = {
  ok: "hs1 api api-0 200 3 0 0 3 0 ---- default GET - -\n",
  shed: "hs1 fe_api <NOSRV> 503 0 -1 -1 -1 0 LR-- sheddable GET failover-shed -\n",
  upstream500: "hs1 api api-0 500 4 0 0 4 0 ---- - GET - -\n",
  retried503: "hs1 api api-0 503 3 3 0 0 2 ---- - GET - -\n",
  serverTimeout: "hs1 api api-0 504 3005 2003 1 -1 2 sH-- - GET - -\n",
  serverReset: "hs1 api api-0 502 2 2 0 -1 2 SH-- - GET - -\n",
  resetMidBody: "hs1 api api-0 200 52 0 0 1 0 SD-- - GET - -\n",
  noServer: "hs1 api <NOSRV> 503 0 -1 -1 -1 0 SC-- - GET - -\n",
  queueTimeout: "hs1 api <NOSRV> 503 302 302 -1 -1 0 sQ-- critical GET - -\n",
  connectRefused: "hs1 api api-0 503 1003 1002 -1 -1 +2 SC-- - GET - -\n",
  badRequest: "hs1 fe_api <NOSRV> 400 0 -1 -1 -1 0 PR-- - <BADREQ> - -\n",
  clientGone: "hs1 api api-0 -1 120 0 0 -1 0 CH-- default POST - -\n",
  clientGoneMidBody: "hs1 api api-0 200 301 0 0 2 0 CD-- - GET - -\n",
} as const;

function parsed(text: string): ParsedLine {
  const line = parseHaproxyLogLine(text);
  assert.ok(line !== null, `parses: ${text}`);
  return line;
}

describe("parseHaproxyLogLine", () => {
  it("reads every field, with or without the trailing newline", () => {
    const expected: ParsedLine = {
      service: "api",
      server: "api-0",
      status: 503,
      totalMs: 1003,
      queueMs: 1002,
      connectMs: -1,
      responseMs: -1,
      retries: 2,
      termination: "SC--",
      criticality: "default",
      method: "GET",
      local: null,
      weight: 1,
    };
    assert.deepEqual(parseHaproxyLogLine(LINES.connectRefused), expected);
    assert.deepEqual(parseHaproxyLogLine(LINES.connectRefused.trimEnd()), expected);
  });

  it("takes the service from a frontend's name and reads <NOSRV>, criticality and the local reason", () => {
    const shed = parsed(LINES.shed);
    assert.equal(shed.service, "api");
    assert.equal(shed.server, null);
    assert.equal(shed.criticality, "sheddable");
    assert.equal(shed.local, "failover-shed");
    assert.equal(parsed(LINES.queueTimeout).criticality, "critical");
    assert.equal(parsed(LINES.badRequest).method, "<BADREQ>");
    // An unknown criticality (HAProxy logs the header as sent) reads as default.
    assert.equal(parsed(LINES.ok.replace(" default ", " Urgent ")).criticality, "default");
  });

  it("reads the log share: an answered request's line stands for 10000 / share requests, any other for one", () => {
    const sampled = (line: string, share: string) => `${line.trimEnd().replace(/ -$/, ` ${share}`)}\n`;
    assert.equal(parsed(sampled(LINES.ok, "250")).weight, 40);
    assert.equal(parsed(sampled(LINES.upstream500, "5000")).weight, 2);
    assert.equal(parsed(sampled(LINES.ok, "10000")).weight, 1);
    // No answer from a server: never sampled, whatever the share says.
    assert.equal(parsed(sampled(LINES.connectRefused, "250")).weight, 1);
    assert.equal(parsed(sampled(LINES.shed, "250")).weight, 1);
    for (const share of ["0", "10001", "x", "-5"]) {
      assert.equal(parseHaproxyLogLine(sampled(LINES.ok, share)), null, share);
    }
  });

  it("returns null for anything else", () => {
    for (const text of [
      "",
      "\n",
      "hello world",
      LINES.ok.replace("hs1", "hs2"),
      LINES.ok.replace(" GET -", " GET"),
      `${LINES.ok.trimEnd()} extra`,
      LINES.ok.replace(" 200 ", " abc "),
      LINES.ok.replace(" ---- ", " --- "),
      LINES.ok.replace(" 0 ---- ", " -1 ---- "),
      `<134>Dec  6 20:00:00 haproxy[1]: ${LINES.ok}`,
    ]) {
      assert.equal(parseHaproxyLogLine(text), null, JSON.stringify(text));
    }
  });
});

describe("a sampled line counts for the requests it stands for", () => {
  it("in the service, release and instance windows, its latency included", () => {
    const stats = new TrafficStats();
    const receiver = new HaproxyLogReceiver({ stats, lookup: () => ({ release: "v1", zone: "a" }) });
    // 1 in 40 answered requests logged: two lines stand for 80 requests, one of them errors.
    receiver.record("hs1 api api-0 200 7 0 0 7 0 ---- default GET - 250");
    receiver.record("hs1 api api-0 500 9 0 0 9 0 ---- default GET - 250");
    // Refused before any answer: always logged, counts once.
    receiver.record("hs1 api api-0 503 1003 1002 -1 -1 +2 SC-- - GET - 250");
    const service = stats.window({ service: "api", windowMs: 10_000 });
    assert.deepEqual([service.requests, service.errors], [81, 41]);
    const instance = stats.window({ service: "api", instance: "api-0", windowMs: 10_000 });
    assert.deepEqual([instance.requests, instance.errors], [81, 41]);
    assert.equal(receiver.received, 0, "record() is not a received line");
  });
});

describe("lineOutcome", () => {
  it("maps each termination state to the embedded proxy's result and attempt outcome", () => {
    const table: [keyof typeof LINES, string, number, AttemptOutcome | null, string | null][] = [
      ["ok", "ok", 200, "success", null],
      ["shed", "shed", 503, null, "failover-shed"],
      ["upstream500", "upstream-5xx", 500, "http-5xx", null],
      ["retried503", "upstream-5xx", 503, "http-5xx", null],
      ["serverTimeout", "timeout", 504, "timeout", null],
      ["serverReset", "failed", 502, "reset", null],
      ["resetMidBody", "ok", 200, "success", null],
      ["noServer", "no-upstream", 503, null, null],
      ["queueTimeout", "shed", 503, null, "queue-timeout"],
      ["connectRefused", "failed", 503, "connect-error", null],
      ["badRequest", "client-error", 400, null, null],
      ["clientGone", "failed", 499, null, null],
      ["clientGoneMidBody", "ok", 200, "success", null],
    ];
    for (const [name, result, status, attempt, shed] of table) {
      const o = lineOutcome(parsed(LINES[name]));
      assert.deepEqual([o.result, o.status, o.attempt, o.shed], [result, status, attempt, shed], name);
    }
    // The last attempt's latency: connect + response when it answered, else what %Tw leaves.
    assert.equal(lineOutcome(parsed(LINES.ok)).attemptLatencyMs, 3);
    assert.equal(lineOutcome(parsed(LINES.serverTimeout)).attemptLatencyMs, 1002);
  });
});

describe("HaproxyLogReceiver", () => {
  it("records lines written as the ring forwards them into the service, release and instance windows", async (t) => {
    const stats = new TrafficStats();
    const outcomes: string[] = [];
    const zones: Record<string, { release: string; zone: string }> = {
      "api-0": { release: "v1", zone: "a" },
      "api-1": { release: "v2", zone: "b" },
    };
    const receiver = new HaproxyLogReceiver({
      stats,
      lookup: (service, instance) => (service === "api" ? (zones[instance] ?? null) : null),
      onOutcome: (service, instance, outcome) => outcomes.push(`${service}/${instance}/${outcome}`),
    });
    const port = await receiver.start();
    t.after(() => receiver.close());
    const client = await new Promise<Socket>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => resolve(socket));
    });
    t.after(() => client.destroy());

    const lines: string[] = [];
    // api-0 (v1): 100 answers of 1..100 ms. api-1 (v2): 10 errors of 500 ms, one of them retried.
    for (let ms = 1; ms <= 100; ms++)
      lines.push(`hs1 api api-0 200 ${ms} 0 0 ${ms} 0 ---- default GET - -\n`);
    for (let i = 0; i < 10; i++)
      lines.push(`hs1 api api-1 500 500 0 0 500 ${i === 0 ? "+1" : "0"} ---- default GET - -\n`);
    // Shed by the failover gate (4), timed out in the queue (2), no server (1); an hs1 line that
    // cannot be read, and HAProxy's own notice at a reload (not traffic, not a parsing problem).
    for (let i = 0; i < 4; i++) lines.push(LINES.shed);
    lines.push(LINES.queueTimeout, LINES.queueTimeout, LINES.noServer, "hs1 api truncated\n");
    lines.push("Proxy fe_api stopped (cumulated conns: FE: 12, BE: 0).\n");
    // An instance HAProxy still names but the engine no longer serves: request counted, attempt not.
    lines.push("hs1 api api-9 200 5 0 0 5 0 ---- default GET - -\n");
    // As HAProxy's ring forwards them: newline-terminated, several per write, and a line split
    // across two writes.
    const text = lines.join("");
    client.write(text.slice(0, 1_000));
    client.write(text.slice(1_000));
    await waitFor(() => receiver.received === lines.length, { what: "every line" });

    assert.equal(receiver.unparsed, 1);
    assert.equal(receiver.notices, 1);
    assert.equal(receiver.unknownAttempts, 1);
    const service = stats.window({ service: "api", windowMs: 10_000 });
    assert.equal(service.requests, 118);
    assert.equal(service.errors, 17); // 10 upstream-5xx, 6 shed, 1 no-upstream
    // p99 of 118: the 117th value, one of the 500 ms errors (buckets read back within 2.5 %).
    assert.ok(Math.abs(service.p99Ms! - 500) <= 500 * 0.025, `p99 ${service.p99Ms}`);

    const v1 = stats.window({ service: "api", release: "v1", windowMs: 10_000 });
    assert.deepEqual([v1.requests, v1.errors], [100, 0]);
    assert.ok(
      Math.abs(v1.p50Ms! - 50) <= 50 * 0.025 && Math.abs(v1.p99Ms! - 99) <= 99 * 0.025,
      JSON.stringify(v1),
    );
    const v2 = stats.window({ service: "api", release: "v2", windowMs: 10_000 });
    assert.deepEqual([v2.requests, v2.errors, v2.errorRate], [10, 10, 1]);
    assert.equal(stats.window({ service: "api", instance: "api-0", windowMs: 10_000 }).requests, 100);
    assert.equal(stats.window({ service: "api", instance: "api-1", windowMs: 10_000 }).errors, 10);
    assert.equal(stats.window({ service: "api", instance: "api-9", windowMs: 10_000 }).requests, 0);

    const metrics = await stats.metricsText();
    assert.match(
      metrics,
      /homeostat_proxy_shed_total\{service="api",criticality="sheddable",reason="failover-shed"\} 4/,
    );
    assert.match(
      metrics,
      /homeostat_proxy_shed_total\{service="api",criticality="critical",reason="queue-timeout"\} 2/,
    );
    assert.match(
      metrics,
      /homeostat_proxy_requests_total\{service="api",criticality="sheddable",result="shed"\} 4/,
    );
    assert.match(
      metrics,
      /homeostat_proxy_requests_total\{service="api",criticality="default",result="no-upstream"\} 1/,
    );
    assert.match(
      metrics,
      /homeostat_proxy_attempts_total\{service="api",release="v2",instance="api-1",outcome="http-5xx"\} 10/,
    );
    assert.deepEqual(stats.criticalityRates("api", 10_000, "window"), {
      critical: 0.2,
      default: 11.2,
      sheddable: 0.4,
    });

    // One outcome per line that names the server it tried, unknown instances included.
    assert.equal(outcomes.length, 111);
    assert.equal(outcomes.filter((o) => o === "api/api-1/http-5xx").length, 10);
    assert.ok(outcomes.includes("api/api-9/success"));
  });

  it("shares its port with a successor's receiver, refuses one held by anyone else, frees its own on close", async (t) => {
    const first = new HaproxyLogReceiver({ stats: new TrafficStats(), lookup: () => null });
    const port = await first.start();
    t.after(() => first.close());
    // A planned data-plane restart: the successor binds the same port while the first still holds it.
    const successor = new HaproxyLogReceiver({ stats: new TrafficStats(), lookup: () => null, port });
    assert.equal(await successor.start(), port);
    await successor.close();
    // A listener of someone else's, without SO_REUSEPORT: the port is taken.
    await first.close();
    await first.close();
    const foreign = createServer();
    await new Promise<void>((resolve) => foreign.listen(port, "127.0.0.1", resolve));
    const refused = new HaproxyLogReceiver({ stats: new TrafficStats(), lookup: () => null, port });
    try {
      await assert.rejects(
        refused.start(),
        (error: unknown) => error instanceof HomeostatError && error.code === "HS_PORT_IN_USE",
      );
    } finally {
      await refused.close();
      await new Promise<void>((resolve) => foreign.close(() => resolve()));
    }
    const third = new HaproxyLogReceiver({ stats: new TrafficStats(), lookup: () => null, port });
    assert.equal(await third.start(), port);
    await third.close();
  });
});
