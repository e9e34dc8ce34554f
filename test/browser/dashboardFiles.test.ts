/**
 * The dashboard's file routes (src/server/dashboard.ts) on a real socket, without a browser: what
 * each file is sent as, how long it may be cached, the Content-Security-Policy, a clear page when
 * the dashboard is not built, and that no request reaches a file outside the built dashboard.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { DASHBOARD_CSP, registerDashboard } from "../../src/server/dashboard.ts";
import { installErrorEnvelope } from "../../src/server/errorEnvelope.ts";
import { routesOf } from "../../src/server/route.ts";
import { waitFor } from "../helpers/waitFor.ts";

describe("dashboard files", () => {
  let dir: string;
  let dist: string;
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "homeostat-dashboard-"));
    dist = join(dir, "dist");
    // A secret beside the dashboard: no URL may reach it.
    writeFileSync(join(dir, "secret.txt"), "do not serve");
    app = Fastify({ logger: false });
    installErrorEnvelope(app);
    registerDashboard(app, { dist });
    base = await app.listen({ host: "127.0.0.1", port: 0 });
  });

  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("not built yet: / says how to build it (503), and the routes are declared public", async () => {
    const response = await fetch(`${base}/`);
    assert.equal(response.status, 503);
    assert.match(await response.text(), /npm run build:ui/);
    const declared = routesOf(app).map((r) => `${r.method} ${r.url} ${r.access}`);
    assert.deepEqual(declared, ["GET / public", "GET /assets/:file public", "GET /favicon.svg public"]);
  });

  test("built: the page, hashed assets cached for a year, each with its type and the CSP", async () => {
    mkdirSync(join(dist, "assets"), { recursive: true });
    writeFileSync(join(dist, "index.html"), "<!doctype html><title>t</title>");
    writeFileSync(join(dist, "assets/index-Ab12_cd.js"), "console.log(1)");
    writeFileSync(join(dist, "assets/index-Zz9.css"), "body{}");
    writeFileSync(join(dist, "favicon.svg"), "<svg/>");
    // A rebuild is picked up without a restart (the list is re-read after a second).
    const page = await waitFor(
      async () => {
        const response = await fetch(`${base}/`);
        return response.status === 200 ? response : null;
      },
      { timeoutMs: 5_000, what: "the built page served" },
    );
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(page.headers.get("cache-control"), "no-cache");
    assert.equal(page.headers.get("content-security-policy"), DASHBOARD_CSP);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.equal(page.headers.get("x-frame-options"), "DENY");

    const js = await fetch(`${base}/assets/index-Ab12_cd.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(await js.text(), "console.log(1)");
    const css = await fetch(`${base}/assets/index-Zz9.css`);
    assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
    const icon = await fetch(`${base}/favicon.svg`);
    assert.equal(icon.headers.get("content-type"), "image/svg+xml");
  });

  test("nothing outside the built files: traversal, encoded slashes and unknown names are refused", async () => {
    for (const path of [
      "/assets/..%2f..%2fsecret.txt",
      "/assets/%2e%2e%2fsecret.txt",
      "/assets/..%5csecret.txt",
      "/assets/.hidden.js",
      "/assets/../secret.txt",
      "/assets/nope.js",
      "/secret.txt",
      "/index.html/../../secret.txt",
    ]) {
      const response = await fetch(`${base}${path}`);
      const text = await response.text();
      assert.ok(response.status === 400 || response.status === 404, `${path}: ${response.status}`);
      assert.doesNotMatch(text, /do not serve/, path);
    }
  });
});
