/**
 * Issue 12's drill against a real controller: the shutdown a web page could send (text/plain, a
 * foreign Origin, a foreign Host) is refused and stops nothing; `homeostat down` still stops it all.
 */

import assert from "node:assert/strict";
import { request } from "node:http";
import { test } from "node:test";
import {
  allInstances,
  demoFleetYaml,
  freePortRange,
  readyStatus,
  type StatusDoc,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

function post(port: number, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/v1/shutdown",
        headers: { "content-length": String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("a shutdown a web page could send is refused and nothing stops; the CLI's still works", async () => {
  const box = await newSandbox();
  const basePort = await freePortRange(4);
  const controller = box.up(
    box.file("fleet.yaml", demoFleetYaml({ services: [{ name: "api", replicas: 2, basePort }] })),
  );
  const before = allInstances(await readyStatus(box, 2)).map((i) => i.pid);
  const port = box.apiPort;
  const own = `127.0.0.1:${port}`;
  const attempts: [string, Record<string, string>, number][] = [
    [
      "the issue's: text/plain, foreign Origin and Host",
      { "content-type": "text/plain", origin: "http://evil.example", host: `evil.example:${port}` },
      403,
    ],
    ["text/plain from a page (no preflight)", { "content-type": "text/plain", host: own }, 415],
    ["a form post", { "content-type": "application/x-www-form-urlencoded", host: own }, 415],
    [
      "JSON from a foreign origin",
      { "content-type": "application/json", origin: "http://evil.example", host: own },
      403,
    ],
    ["JSON after DNS rebinding", { "content-type": "application/json", host: `evil.example:${port}` }, 403],
  ];
  for (const [what, headers, status] of attempts) {
    assert.equal(await post(port, headers, "{}"), status, what);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(controller.child.exitCode, null, "the controller still runs");
  const after = allInstances(await box.get<StatusDoc>("/v1/status"));
  assert.deepEqual(
    after.map((i) => [i.pid, i.state]),
    before.map((pid) => [pid, "ready"]),
    "every instance still runs, the same processes",
  );

  const down = await box.cli(["down", "--api-port", String(port)]);
  assert.equal(down.code, 0, down.stderr);
  await waitFor(async () => controller.child.exitCode !== null || controller.child.signalCode !== null, {
    timeoutMs: 20_000,
    what: "the controller to stop after `homeostat down`",
  });
});
