/**
 * The dashboard's Stores panel in a real browser against a real replicated Redis store started
 * with `homeostat up` (real redis-server members, the data plane's endpoint and Sentinel port):
 * the card shows the primary, the epoch, the phase, where the endpoint forwards, the Sentinel
 * port, and each member's zone, role, the member it follows (link up) and its replication lag;
 * after kill -9 of the primary's process it shows the promoted replica, epoch 2, the endpoint
 * switched, the last failover, and the killed member back as a replica of the new primary.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import type { StoreStatus } from "../../src/stateful/redis/storeManager.ts";
import { freePort, freePortRange, type Sandbox, sandbox } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { browserSkipReason, ensureDashboardBuilt, launchBrowser } from "./harness.ts";

const skip = browserSkipReason();

/** What a person reads on a store's card, taken in one pass over the page (no half-rendered mix). */
interface CardView {
  title: string;
  /** The facts list: phase, primary, endpoint, sentinel, by their label. */
  facts: Record<string, string>;
  members: { member: string; zone: string; role: string; follows: string; lag: string }[];
  /** The card's closing lines (last failover, an open incident). */
  notes: string[];
}

// The few DOM members the in-page read uses: declared here, since the tests' tsconfig has no DOM
// library (see dashboard.test.ts).
interface CardElement {
  textContent: string | null;
  querySelector(selector: string): CardElement | null;
  querySelectorAll(selector: string): Iterable<CardElement>;
}

async function readCard(card: Locator): Promise<CardView> {
  return await card.evaluate((el: CardElement) => {
    const text = (e: CardElement | null) => (e?.textContent ?? "").replace(/\s+/g, " ").trim();
    const facts: Record<string, string> = {};
    for (const fact of el.querySelectorAll("dl.facts > div")) {
      facts[text(fact.querySelector("dt"))] = text(fact.querySelector("dd"));
    }
    const members = [...el.querySelectorAll("tbody tr")].map((row) => {
      const [zone, role, follows, lag] = [...row.querySelectorAll("td")].map(text);
      return {
        member: text(row.querySelector("th")),
        zone: zone ?? "",
        role: role ?? "",
        follows: follows ?? "",
        lag: lag ?? "",
      };
    });
    return {
      title: text(el.querySelector("h3")),
      facts,
      members,
      notes: [...el.querySelectorAll(":scope > p")].map(text),
    };
  });
}

/**
 * The card once it reads as a healthy store led by `primary` at `epoch`: every other member a
 * replica following it with its link up and a lag in bytes. Waits (the page is live over the
 * event stream) and fails with the last card read after the deadline.
 */
async function healthyCard(
  card: Locator,
  primary: string,
  epoch: number,
  timeoutMs: number,
): Promise<CardView> {
  let last: CardView | null = null;
  try {
    return await waitFor(
      async () => {
        const view = await readCard(card);
        last = view;
        const ok =
          view.title.includes(`epoch ${epoch}`) &&
          view.facts.phase === "healthy" &&
          view.facts.primary === primary &&
          view.members.length === 3 &&
          view.members.every((m) =>
            m.member === primary
              ? m.role === "primary" && m.lag === "0 B"
              : m.role === "replica" && m.follows === primary && /^\d+ B$/.test(m.lag),
          );
        return ok ? view : null;
      },
      { timeoutMs, intervalMs: 50, what: `the card showing ${primary} primary at epoch ${epoch}, healthy` },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}\nlast card read: ${JSON.stringify(last)}`, { cause: error });
  }
}

describe("the Stores panel", { skip: skip ?? false }, () => {
  let box: Sandbox;
  let browser: Browser;
  let page: Page;
  let port: number;
  let sentinelPort: number;
  const pageErrors: string[] = [];
  const store = async (): Promise<StoreStatus> =>
    (await box.get<{ stores: StoreStatus[] }>("/v1/stores")).stores[0]!;

  before(async () => {
    // Not a skip: a machine that runs this file needs Redis (.ci/run installs redis-server).
    assert.ok(existsSync("/usr/bin/redis-server"), "/usr/bin/redis-server is not installed");
    ensureDashboardBuilt();
    box = await sandbox("homeostat-browser-");
    const basePort = await freePortRange(3);
    port = await freePort();
    sentinelPort = await freePort();
    box.up(
      box.file(
        "fleet.yaml",
        `version: 1\nservices: {}\nstores:\n  cache:\n    kind: redis\n    replicas: 2\n    basePort: ${basePort}\n    port: ${port}\n    sentinel: { port: ${sentinelPort} }\n    placement: { zones: [zone-a, zone-b, zone-c] }\n`,
      ),
    );
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on("pageerror", (error) => {
      pageErrors.push(error.message);
    });
    try {
      await waitFor(async () => (await store()).phase === "healthy", {
        what: "store healthy",
        timeoutMs: 20_000,
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${box.describeControllers()}`, { cause: error });
    }
  });

  after(async () => {
    await browser?.close();
    await box?.cleanup();
  });

  test("topology, lag and epoch on the card; after kill -9 of the primary, the new primary and epoch 2", async () => {
    await page.goto(`http://127.0.0.1:${box.apiPort}/`);
    await page.getByLabel("API token").fill(box.token());
    await page.getByRole("button", { name: "Sign in" }).click();
    const card = page.getByRole("article", { name: /^cache/ });
    await card.waitFor({ timeout: 15_000 });

    const initial = await healthyCard(card, "cache-0", 1, 15_000);
    assert.match(initial.title, /^cache redis · epoch 1$/);
    assert.equal(initial.facts.endpoint, `:${port} → cache-0`);
    assert.equal(initial.facts.sentinel, `:${sentinelPort}`);
    // Members in spec order, spread over the zones; replicas follow cache-0 with the link up
    // (a replica whose link is down reads "cache-0 (link down)").
    assert.deepEqual(
      initial.members.map((m) => [m.member, m.zone, m.role, m.follows]),
      [
        ["cache-0", "zone-a", "primary", "—"],
        ["cache-1", "zone-b", "replica", "cache-0"],
        ["cache-2", "zone-c", "replica", "cache-0"],
      ],
    );
    assert.deepEqual(initial.notes, [], "no failover yet, no incident");

    const primaryPid = (await store()).members.find((m) => m.name === "cache-0")!.pid!;
    process.kill(primaryPid, "SIGKILL");
    // The promoted replica is the controller's choice (the lower lag, then priority): read it
    // from the page, then hold the page to it.
    const promoted = await waitFor(
      async () => {
        const view = await readCard(card);
        return view.title.includes("epoch 2") && view.facts.primary !== "cache-0" ? view.facts.primary : null;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: "the card showing epoch 2 and a new primary" },
    );
    assert.ok(promoted === "cache-1" || promoted === "cache-2", `promoted ${promoted}`);

    // The killed member comes back (restarted) as a replica of the new one.
    const afterwards = await healthyCard(card, promoted, 2, 15_000);
    assert.equal(afterwards.facts.endpoint, `:${port} → ${promoted}`);
    assert.equal(afterwards.members.find((m) => m.member === "cache-0")?.role, "replica");
    assert.ok(
      afterwards.notes.some((n) =>
        new RegExp(`^last failover: cache-0 → ${promoted} at .* \\(epoch 2\\)$`).test(n),
      ),
      `the last failover named: ${JSON.stringify(afterwards.notes)}`,
    );
    // The page shows what the API says, nothing it derived.
    const api = await store();
    assert.equal(api.epoch, 2);
    assert.equal(api.primary, promoted);
    assert.deepEqual(pageErrors, [], "no script error in the page");
  });
});
