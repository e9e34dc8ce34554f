/**
 * The zones bench's load (bench/zones/load.ts) on the shared generator: its criticality mix goes
 * out in the pattern, outcomes are classified (shed = 503 with x-homeostat-shed), times are due
 * and written from t0, and `stop()` ends a load that had no fixed length.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ProcessLedger } from "../../bench/foundation/processes.ts";
import { epochNow, MIX_PATTERN, OpenLoad } from "../../bench/zones/load.ts";
import { type LocalHttpServer, listenLocal } from "../helpers/localHttpServer.ts";

describe("zones load on the shared generator", () => {
  let server: LocalHttpServer;
  let port: number;
  const ledger = new ProcessLedger();

  before(async () => {
    server = await listenLocal((req, res) => {
      const criticality = String(req.headers["x-homeostat-criticality"]);
      if (criticality === "sheddable") res.writeHead(503, { "x-homeostat-shed": "queue-full" }).end();
      else res.writeHead(200, { "x-homeostat-instance": `api-${criticality}` }).end("ok");
    });
    port = server.port;
  });

  after(async () => {
    await server.close();
    ledger.sweep();
  });

  it("sends the mix, classifies the answers, and stops when told", async () => {
    const load = new OpenLoad({ port, path: "/", ratePerSecond: 200, timeoutMs: 1000, ledger });
    const t0 = load.start();
    assert.ok(t0 > epochNow(), "request 0 is due a moment after start()");
    await new Promise((resolve) => setTimeout(resolve, t0 + 500 - epochNow()));
    const result = await load.stop();
    assert.equal(result.t0, t0);
    assert.ok(
      result.records.length >= 80 && result.records.length <= 140,
      `${result.records.length} requests`,
    );
    for (const [i, r] of result.records.entries()) {
      assert.equal(r.criticality, MIX_PATTERN[i % MIX_PATTERN.length]);
      assert.ok(Math.abs(r.due - i * 5) < 0.01, `due ${r.due}`); // t0 to the µs
      assert.ok(r.written !== null && r.written >= r.due && r.sent === r.written);
      assert.ok(r.done >= r.written);
      if (r.criticality === "sheddable") {
        assert.equal(r.outcome, "shed");
        assert.equal(r.shedReason, "queue-full");
      } else {
        assert.equal(r.outcome, "ok");
        assert.equal(r.instance, `api-${r.criticality}`);
      }
    }
    assert.ok(result.achievedRate > 150, `achieved ${result.achievedRate} req/s`);
    assert.ok(result.maxLatenessMs >= 0 && result.maxLatenessMs < 200, `lateness ${result.maxLatenessMs} ms`);
    assert.equal(typeof result.valid, "boolean");
    assert.equal(result.summary.due, result.records.length);
  });
});
