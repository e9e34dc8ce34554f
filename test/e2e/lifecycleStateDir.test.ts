/**
 * One state per fleet (issue 13, item 8 and finding (c)): the default state directory is per
 * fleet file, so two fleet files in one folder do not share instances, incidents or failure
 * counts; a state directory refuses another fleet file; the folder-wide `.homeostat/` of earlier
 * versions keeps working for the fleet file that ran on it.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { isProcessAlive } from "../../src/lib/procStat.ts";
import {
  allInstances,
  demoFleetYaml,
  freePort,
  freePortRange,
  processesUnder,
  type Sandbox,
  type StatusDoc,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

interface Incident {
  instance: string;
}

/** GET `path` from the controller on `port` with the admin token in `stateDir`. */
async function getFrom<T>(port: number, stateDir: string, path: string): Promise<T> {
  const token = readFileSync(join(stateDir, "admin-token"), "utf8").trim();
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function readyOn(port: number, stateDir: string, count: number): Promise<StatusDoc> {
  return await waitFor(
    async () => {
      const status = await getFrom<StatusDoc>(port, stateDir, "/v1/status").catch(() => null);
      if (status === null) return null;
      const instances = allInstances(status);
      return instances.length === count && instances.every((i) => i.state === "ready") ? status : null;
    },
    { timeoutMs: 30_000, what: `${count} ready on ${port}` },
  );
}

async function fleetFile(box: Sandbox, fileName: string, name: string, service: string): Promise<string> {
  const basePort = await freePortRange(2);
  return box.file(fileName, demoFleetYaml({ name, services: [{ name: service, replicas: 1, basePort }] }));
}

test("two fleet files in one folder keep their own state: instances, incidents and tokens", async () => {
  const box = await newSandbox();
  const shop = await fleetFile(box, "shop.yaml", "shop", "cart");
  const blog = await fleetFile(box, "blog.yml", "blog", "posts");
  const shopState = join(box.dir, ".homeostat", "shop");
  const blogState = join(box.dir, ".homeostat", "blog");
  const blogPort = await freePort();

  const shopUp = box.up(shop);
  const blogUp = box.up(blog, ["--api-port", String(blogPort)]);
  const shopStatus = await readyOn(box.apiPort, shopState, 1);
  const blogStatus = await readyOn(blogPort, blogState, 1);
  assert.match(shopUp.output(), /state {3}\.homeostat\/shop\/state\.db/);
  assert.match(blogUp.output(), /state {3}\.homeostat\/blog\/state\.db/);
  assert.deepEqual(
    allInstances(shopStatus).map((i) => i.name),
    ["cart-0"],
  );
  assert.deepEqual(
    allInstances(blogStatus).map((i) => i.name),
    ["posts-0"],
  );
  assert.notEqual(
    readFileSync(join(shopState, "admin-token"), "utf8"),
    readFileSync(join(blogState, "admin-token"), "utf8"),
  );

  // An incident of one fleet stays in its own state.
  const victim = allInstances(shopStatus)[0]!;
  process.kill(victim.pid!, "SIGKILL");
  await waitFor(
    async () =>
      (await getFrom<{ incidents: Incident[] }>(box.apiPort, shopState, "/v1/incidents")).incidents.some(
        (i) => i.instance === "cart-0",
      ),
    { timeoutMs: 20_000, what: "the shop's incident" },
  );
  const blogIncidents = await getFrom<{ incidents: Incident[] }>(blogPort, blogState, "/v1/incidents");
  assert.deepEqual(blogIncidents.incidents, [], "the blog's state has none of the shop's incidents");

  for (const [port, state] of [
    [box.apiPort, shopState],
    [blogPort, blogState],
  ] as const) {
    const down = await box.cli(["down", "--api-port", String(port), "--state-dir", state]);
    assert.equal(down.code, 0, down.stderr);
  }
  await Promise.all([shopUp.exited, blogUp.exited]);
});

test("a state directory refuses another fleet file, and says how to pick another", async () => {
  const box = await newSandbox();
  const shop = await fleetFile(box, "shop.yaml", "shop", "cart");
  const blog = await fleetFile(box, "blog.yaml", "blog", "posts");
  const shared = join(box.dir, "state");
  const first = box.up(shop, ["--state-dir", shared]);
  await readyOn(box.apiPort, shared, 1);
  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((await first.exited).code, 0);

  const other = box.up(blog, ["--state-dir", shared]);
  const refused = await other.exited;
  assert.equal(refused.code, 1, other.output());
  assert.match(other.output(), /HS_STATE_OTHER_FLEET/);
  assert.match(other.output(), /holds the state of fleet "shop"/);
  assert.match(other.output(), /Leave out --state-dir to use this file's own/);
  assert.deepEqual(processesUnder(box.dir), [], "nothing was started");

  // The fleet it belongs to still runs on it.
  const again = box.up(shop, ["--state-dir", shared]);
  await readyOn(box.apiPort, shared, 1);
  const stop = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal((await again.exited).code, 0);
});

test("the folder-wide .homeostat/ of earlier versions keeps working for its fleet file: instances adopted", async () => {
  const box = await newSandbox();
  const file = await fleetFile(box, "fleet.yaml", "e2e", "api");
  const legacy = join(box.dir, ".homeostat");
  // As an earlier version left it: the fleet's state directly in .homeostat/.
  const old = box.up(file, ["--state-dir", legacy]);
  const before = await readyOn(box.apiPort, legacy, 1);
  const keep = await box.cli(["down", "--keep-fleet", "--api-port", String(box.apiPort)]);
  assert.equal(keep.code, 0, keep.stderr);
  assert.equal((await old.exited).code, 0);

  const now = box.up(file);
  const after = await readyOn(box.apiPort, legacy, 1);
  assert.equal(allInstances(after)[0]!.pid, allInstances(before)[0]!.pid, "adopted from the old state");
  assert.match(now.output(), /shared state directory of earlier versions; it keeps working for this fleet/);
  assert.equal(existsSync(join(legacy, "fleet", "state.db")), false, "no second state was made");
  const pid = allInstances(after)[0]!.pid!;
  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
  await waitFor(() => !isProcessAlive(pid, null), { what: "the instance stopped" });
});
