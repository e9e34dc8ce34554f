/**
 * Authentication end to end, with the real CLI and controller: `up` writes an owner-only admin
 * token and a pointer the CLI finds from any directory; `token` and `audit` commands; a refusal
 * says where the CLI looked; `--bind` beyond loopback needs TLS, and with it the API is HTTPS.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import {
  cli,
  demoFleetYaml,
  freePortRange,
  REPO,
  readyStatus,
  type Sandbox,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();
const TOKEN = /^hs_[A-Za-z0-9_-]{43}$/;

async function oneInstanceFleet(box: Sandbox): Promise<string> {
  const basePort = await freePortRange(2);
  return box.file("fleet.yaml", demoFleetYaml({ services: [{ name: "api", replicas: 1, basePort }] }));
}

const mode = (path: string) => statSync(path).mode & 0o777;

test("up writes an owner-only admin token the CLI finds from anywhere; token and audit commands work end to end", async () => {
  const box = await newSandbox();
  const port = String(box.apiPort);
  const controller = box.up(await oneInstanceFleet(box));
  await readyStatus(box, 1);

  const tokenFile = join(box.stateDir, "admin-token");
  const secret = box.token();
  assert.match(secret, TOKEN);
  assert.equal(mode(tokenFile), 0o600, "admin-token is owner-only");
  assert.equal(mode(box.stateDir), 0o700, "so is the state directory");
  assert.match(controller.output(), /admin token created in \.homeostat\/fleet\/admin-token/);
  assert.ok(!controller.output().includes(secret), "the token is never printed");
  assert.ok(!readFileSync(join(box.stateDir, "controller.log"), "utf8").includes(secret), "nor logged");
  const pointer = join(box.configDir, `api-${port}.json`);
  assert.equal(mode(pointer), 0o600);
  assert.equal(mode(box.configDir), 0o700);
  assert.equal(JSON.parse(readFileSync(pointer, "utf8")).tokenFile, tokenFile);

  // From another directory (the repository's root), no token given: the pointer leads to it.
  const fromRoot = await cli(["status", "--api-port", port], {
    cwd: REPO,
    env: { HOMEOSTAT_CONFIG_DIR: box.configDir },
  });
  assert.equal(fromRoot.code, 0, fromRoot.stderr);
  assert.match(fromRoot.stdout, /api/);
  // No pointer, no token: the error says where the CLI looked and what to do.
  const nowhere = join(box.dir, "empty-config");
  mkdirSync(nowhere);
  const lost = await cli(["status", "--api-port", port], {
    cwd: REPO,
    env: { HOMEOSTAT_CONFIG_DIR: nowhere },
  });
  assert.equal(lost.code, 1);
  assert.match(lost.stderr, /\[HS_UNAUTHENTICATED\]/);
  assert.match(
    lost.stderr,
    /No token was found \(looked at: --token; \$HOMEOSTAT_TOKEN; .*api-\d+\.json \(none\)\)/,
  );
  assert.match(lost.stderr, /--state-dir DIR, or give a token with --token or \$HOMEOSTAT_TOKEN/);

  // An operator and a viewer token, made with the CLI.
  const made = await box.cli([
    "token",
    "create",
    "--name",
    "dash",
    "--role",
    "viewer",
    "--json",
    "--api-port",
    port,
  ]);
  assert.equal(made.code, 0, made.stderr);
  const viewer = (JSON.parse(made.stdout) as { secret: string }).secret;
  assert.match(viewer, TOKEN);
  const ops = await box.cli(["token", "create", "--name", "ops", "--role", "operator", "--api-port", port]);
  assert.equal(ops.code, 0, ops.stderr);
  assert.match(
    ops.stdout,
    /token "ops" \(operator, id \d+\) created\. It is shown only now:\nhs_[A-Za-z0-9_-]{43}\n/,
  );

  // The viewer reads (through $HOMEOSTAT_TOKEN or --token), and may change nothing.
  assert.equal((await box.cli(["status", "--api-port", port], { HOMEOSTAT_TOKEN: viewer })).code, 0);
  assert.equal((await box.cli(["status", "--api-port", port, "--token", viewer])).code, 0);
  const refused = await box.cli(["fault", "clear", "--api-port", port], { HOMEOSTAT_TOKEN: viewer });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /needs the operator role; token "dash" has viewer \[HS_FORBIDDEN\]/);

  const list = await box.cli(["token", "list", "--api-port", port]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^ID +NAME +ROLE +CREATED +BY +LAST USED +REVOKED$/m);
  assert.match(list.stdout, /^1 +admin +admin +.* homeostat up /m);
  assert.match(list.stdout, /^\d+ +dash +viewer +.* admin /m);
  assert.ok(!/hs_/.test(list.stdout), "no secret listed");

  const revoke = await box.cli(["token", "revoke", "dash", "--api-port", port]);
  assert.equal(revoke.code, 0, revoke.stderr);
  assert.match(revoke.stdout, /token "dash" \(viewer, id \d+\) revoked/);
  const revoked = await box.cli(["status", "--api-port", port], { HOMEOSTAT_TOKEN: viewer });
  assert.equal(revoked.code, 1);
  assert.match(revoked.stderr, /token "dash" was revoked at .*The token from \$HOMEOSTAT_TOKEN was refused/);
  const lastAdmin = await box.cli(["token", "revoke", "admin", "--api-port", port]);
  assert.equal(lastAdmin.code, 1);
  assert.match(lastAdmin.stderr, /last live admin token.*\[HS_CONFLICT\]/);

  const audit = await box.cli(["audit", "--json", "--api-port", port]);
  assert.equal(audit.code, 0, audit.stderr);
  const rows = JSON.parse(audit.stdout) as {
    method: string;
    route: string | null;
    url: string;
    tokenName: string;
    status: number;
    errorCode: string | null;
  }[];
  const seen = rows.map((r) => `${r.method} ${r.url} ${r.tokenName} ${r.status} ${r.errorCode ?? "-"}`);
  assert.deepEqual(
    seen.filter((line) => !line.startsWith("GET")),
    [
      "POST /v1/tokens admin 201 -",
      "POST /v1/tokens admin 201 -",
      "DELETE /v1/faults dash 403 HS_FORBIDDEN",
      `DELETE /v1/tokens/${/\/v1\/tokens\/(\d+)/.exec(seen[3] ?? "")?.[1]} admin 200 -`,
      "DELETE /v1/tokens/1 admin 409 HS_CONFLICT",
    ],
  );
  const text = await box.cli(["audit", "--limit", "2", "--api-port", port]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^ID +AT +WHO +ROLE +REQUEST +STATUS +CODE +TOOK +REASON$/m);
  assert.equal(text.stdout.trim().split("\n").length, 3, "a header and the newest two");
  assert.match(text.stdout, /DELETE \/v1\/tokens\/1 +409 +HS_CONFLICT/);

  // --state-dir leads to the token too (no pointer): down stops it all.
  const down = await cli(["down", "--state-dir", box.stateDir, "--api-port", port], {
    cwd: REPO,
    env: { HOMEOSTAT_CONFIG_DIR: nowhere },
  });
  assert.equal(down.code, 0, down.stderr);
  await controller.exited;

  // Restarted on the same state directory: the same token, kept.
  const again = box.up(join(box.dir, "fleet.yaml"));
  await readyStatus(box, 1);
  assert.equal(box.token(), secret);
  assert.match(again.output(), /admin token in \.homeostat\/fleet\/admin-token/);
});

function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

test("--bind beyond loopback without a certificate is refused before anything starts", async () => {
  const box = await newSandbox();
  const file = await oneInstanceFleet(box);
  for (const args of [
    ["--bind", "0.0.0.0"],
    ["--bind", "0.0.0.0", "--tls-cert", join(box.dir, "cert.pem")],
  ]) {
    const controller = box.up(file, args);
    const exit = await controller.exited;
    assert.equal(exit.code, 1, controller.output());
    assert.match(controller.output(), /\[HS_USAGE\]/);
    assert.match(controller.output(), /--tls-cert/);
  }
  assert.ok(!existsSync(box.stateDir), "no state directory was even created");
  assert.ok(await portIsFree(box.apiPort, "0.0.0.0"), "nothing listens on the API port");
});

/** GET over HTTPS trusting `ca`: status and body. */
function httpsGet(
  port: number,
  path: string,
  ca: Buffer,
  token?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        ca,
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        timeout: 5000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

test("with --tls-cert and --tls-key the API is HTTPS only, and the CLI follows", async () => {
  const box = await newSandbox();
  const dir = join(box.dir, "tls");
  mkdirSync(dir);
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  const ca = readFileSync(cert);
  const controller = box.up(await oneInstanceFleet(box), [
    "--bind",
    "127.0.0.1",
    "--tls-cert",
    cert,
    "--tls-key",
    key,
  ]);
  await waitFor(async () => (await httpsGet(box.apiPort, "/healthz", ca).catch(() => null))?.status === 200, {
    timeoutMs: 30_000,
    what: "the API answering over HTTPS",
  });
  assert.match(controller.output(), new RegExp(`API +https://127\\.0\\.0\\.1:${box.apiPort}`));
  assert.equal((await httpsGet(box.apiPort, "/v1/status", ca)).status, 401, "a token is still needed");
  const status = await httpsGet(box.apiPort, "/v1/status", ca, box.token());
  assert.equal(status.status, 200);
  assert.match(status.body, /"services"/);
  await assert.rejects(
    fetch(`http://127.0.0.1:${box.apiPort}/healthz`, { signal: AbortSignal.timeout(5000) }),
  );

  const cliStatus = await box.cli(["status", "--api-port", String(box.apiPort)]);
  assert.equal(cliStatus.code, 0, cliStatus.stderr);
  assert.match(cliStatus.stdout, /api/);
});
