/**
 * The rendered haproxy.cfg: HAProxy itself accepts it (`haproxy -c`), and the traffic settings
 * land where the contract says (timeouts, retries, idempotent-only layer-7 retries, per-server
 * maxconn, placeholder servers, shedding and priority rules, our log line).
 */

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import {
  HAPROXY_LOG_FORMAT,
  type HaproxyServiceConfig,
  renderHaproxyConfig,
  shedMapText,
} from "../../../src/dataplane/haproxy/haproxyConfig.ts";
import { haproxyPaths } from "../../../src/dataplane/haproxy/haproxyPaths.ts";
import { checkHaproxyConfig } from "../../../src/dataplane/haproxy/haproxyProcess.ts";
import { traffic } from "../../traffic/proxy/kit.ts";
import { HAPROXY, stateDir } from "./haproxyKit.ts";

function services(): HaproxyServiceConfig[] {
  return [
    {
      name: "api",
      port: 18_080,
      traffic: traffic({
        retries: { maxAttempts: 3, perTryTimeoutMs: 7_000 },
        limits: { maxConcurrentPerInstance: 40, queueTimeoutMs: 1_500 },
      }),
      servers: ["api-0", "api-1", "api-2", "api-3"],
    },
    {
      name: "web",
      port: 18_081,
      traffic: traffic({ retries: { maxAttempts: 1 } }),
      servers: ["web-0", "web-1"],
    },
  ];
}

function section(cfg: string, header: string): string[] {
  const lines = cfg.split("\n");
  const start = lines.indexOf(header);
  assert.ok(start >= 0, `no section "${header}"`);
  const end = lines.findIndex((line, i) => i > start && line !== "" && !line.startsWith(" "));
  return lines.slice(start + 1, end < 0 ? undefined : end).map((line) => line.trim());
}

test("the rendered configuration passes haproxy -c", async (t) => {
  const { paths } = stateDir(t, ["api", "web"]);
  const cfg = renderHaproxyConfig({ services: services(), paths, logPort: 15_514 });
  writeFileSync(paths.config, cfg);
  await checkHaproxyConfig(HAPROXY, paths.config);
});

test("a configuration HAProxy refuses is HS_HAPROXY_CONFIG with HAProxy's alert", async (t) => {
  const { paths } = stateDir(t);
  writeFileSync(paths.config, "defaults\n  mode http\n  bogus-keyword on\n");
  await assert.rejects(checkHaproxyConfig(HAPROXY, paths.config), (error: Error & { code?: string }) => {
    assert.equal(error.code, "HS_HAPROXY_CONFIG");
    assert.match(error.message, /bogus-keyword/);
    return true;
  });
});

test("traffic settings map to timeouts, retries, maxconn and placeholder servers", () => {
  const paths = haproxyPaths("/var/lib/fleet");
  const cfg = renderHaproxyConfig({ services: services(), paths, logPort: 15_514 });
  const api = section(cfg, "backend api");
  assert.ok(api.includes("balance roundrobin"));
  assert.ok(api.includes("timeout connect 5000ms"), "connect is min(per-try, 5 s)");
  assert.ok(api.includes("timeout server 7000ms"));
  assert.ok(api.includes("timeout queue 1500ms"));
  assert.ok(api.includes("retries 2"));
  assert.ok(api.includes("retry-on conn-failure empty-response response-timeout 502 503 504"));
  assert.ok(api.includes("option redispatch 1"));
  assert.ok(api.includes("http-request disable-l7-retry unless { method GET HEAD OPTIONS PUT DELETE }"));
  assert.ok(api.includes("http-reuse safe"));
  assert.deepEqual(
    api.filter((line) => line.startsWith("server ")),
    [0, 1, 2, 3].map((slot) => `server api-${slot} 127.0.0.1:1 disabled weight 1 maxconn 40`),
  );
  assert.ok(
    !api.some((line) => /\bcheck\b/.test(line)),
    "HAProxy's own checks are off: Homeostat's probes decide",
  );
  const web = section(cfg, "backend web");
  assert.ok(web.includes("retries 0"));
  assert.ok(web.includes("timeout connect 2000ms"));

  const fe = section(cfg, "frontend fe_api");
  assert.ok(fe.includes("bind 127.0.0.1:18080"));
  assert.ok(fe.includes("default_backend api"));
  assert.ok(fe.some((line) => line.startsWith("http-request set-var(txn.hs_crit)")));
  assert.ok(api.some((line) => line.includes(`map_str_int("${paths.shedMap("api")}",0)`)));
  assert.ok(
    api.some(
      (line) =>
        line.startsWith("http-request return status 503") && line.includes("x-homeostat-shed failover-shed"),
    ),
  );
  assert.ok(
    api.includes("http-request set-priority-class int(1000) if { var(txn.hs_crit) -m str sheddable }"),
  );

  const global = section(cfg, "global");
  assert.ok(global.includes(`stats socket "${paths.adminSocket}" mode 600 level admin expose-fd listeners`));
  assert.ok(global.includes(`server-state-file "${paths.serverState}"`));
  const defaults = section(cfg, "defaults");
  // Request lines go through a ring forwarded over TCP to the data plane's receiver.
  assert.ok(defaults.includes("log ring@hs_log len 4096 format raw local0 info"));
  const ring = section(cfg, "ring hs_log");
  assert.ok(ring.includes("server dataplane 127.0.0.1:15514"));
  assert.ok(ring.includes("format raw"));
  assert.ok(defaults.includes(`log-format "${HAPROXY_LOG_FORMAT}"`));
  assert.ok(defaults.includes("load-server-state-from-file global"));
  assert.ok(defaults.includes("option idle-close-on-response"), "no idle close racing a request at reload");
});

test("names HAProxy cannot take are refused, not rendered", () => {
  const paths = haproxyPaths("/var/lib/fleet");
  const bad = { ...services()[0]!, name: "api svc" };
  assert.throws(
    () => renderHaproxyConfig({ services: [bad], paths, logPort: 1 }),
    /not a valid HAProxy name/,
  );
});

test("shed map text is in 1/10000ths and never lists critical", () => {
  assert.equal(shedMapText({ sheddable: 1, default: 0.25 }), "sheddable 10000\ndefault 2500\n");
  assert.equal(shedMapText(null), "sheddable 0\ndefault 0\n");
});

test("socket paths too long for sun_path move to the temporary directory", () => {
  const paths = haproxyPaths(`/tmp/${"x".repeat(100)}`);
  assert.ok(Buffer.byteLength(paths.adminSocket) <= 96);
  assert.notEqual(paths.adminSocket, paths.masterSocket);
  assert.ok(paths.config.includes("x".repeat(100)));
});
