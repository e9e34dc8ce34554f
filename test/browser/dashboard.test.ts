/**
 * The dashboard in a real browser (Debian's Chromium, headless, driven by playwright-core) against
 * a real fleet: `homeostat up`, its instances, its data plane. A keyboard-only login; a killed
 * instance seen going failing → recovering → verified with its incident's timeline; a bad canary
 * deployed from the page and seen rolled back; a viewer's actions refused with the API's message;
 * one column without horizontal scrolling at 390 px. And on a fleet whose release fails open
 * (`AUTH_DISABLED=1`): the broken security invariant in the services list and the warnings, and a
 * restarted instance's incident held back by the verification gate, which says why.
 */

import assert from "node:assert/strict";
import { request } from "node:http";
import { after, afterEach, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import {
  DEMO_PROBES,
  demoRelease,
  freePortRange,
  readyStatus,
  type Sandbox,
  sandbox,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import {
  browserSkipReason,
  ensureDashboardBuilt,
  type FrontPorts,
  launchBrowser,
  logIn,
  startLoad,
  writeFleet,
} from "./harness.ts";

const skip = browserSkipReason();

// The few browser globals the in-page checks (page.evaluate) use: this module's own declarations,
// since the tests' tsconfig has no DOM library and adding one would type-check src/ against it too.
interface PageElement {
  id: string;
  tagName: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { right: number };
}
declare const document: {
  activeElement: PageElement | null;
  body: unknown;
  documentElement: { scrollWidth: number; clientWidth: number };
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
};
declare const window: Record<string, unknown>;
declare function getComputedStyle(element: PageElement): { outlineStyle: string };
declare class MutationObserver {
  constructor(callback: () => void);
  observe(target: unknown, options: Record<string, boolean>): void;
}

interface Releases {
  active: string;
  rollouts: { id: number; kind: string; finished: boolean; state: { phase: string; to: string } }[];
}

describe("dashboard in a browser", { skip: skip ?? false }, () => {
  let box: Sandbox;
  let ports: FrontPorts;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /** Uncaught errors in any page: each test ends with none. */
  let pageErrors: string[] = [];

  before(async () => {
    ensureDashboardBuilt();
    box = await sandbox("homeostat-browser-");
    const fleet = await writeFleet(box);
    ports = fleet.ports;
    box.up(fleet.file);
    await readyStatus(
      box,
      3,
      (s) => (s as { dataPlane?: { connected?: boolean } }).dataPlane?.connected === true,
    );
    browser = await launchBrowser();
  });

  after(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
    await browser?.close();
    await box?.cleanup();
  });

  afterEach(() => {
    const errors = pageErrors;
    pageErrors = [];
    assert.deepEqual(errors, [], "no script error in the page");
  });

  /** A new tab with its own session storage (so a token typed in one is not in another). */
  async function newPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => {
      pageErrors.push(error.message);
    });
    return page;
  }

  test("served at / with a self-only Content-Security-Policy; the page is public, its data is not", async () => {
    const page = await fetch(`http://127.0.0.1:${box.apiPort}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'; script-src 'self'/);
    const status = await fetch(`http://127.0.0.1:${box.apiPort}/v1/status`);
    assert.equal(status.status, 401, "the API still needs a token");
    // The Host guard covers the page too: a page whose name was rebound to 127.0.0.1 gets nothing.
    const rebound = await new Promise<number>((resolvePromise, reject) => {
      request({
        host: "127.0.0.1",
        port: box.apiPort,
        path: "/",
        headers: { host: `evil.example:${box.apiPort}` },
      })
        .on("response", (r) => {
          r.resume();
          resolvePromise(r.statusCode ?? 0);
        })
        .on("error", reject)
        .end();
    });
    assert.equal(rebound, 403);
  });

  test("keyboard only: the token field has focus, Tab reaches Sign in, Enter signs in", async () => {
    const page = await newPage();
    await page.goto(`http://127.0.0.1:${box.apiPort}/`);
    await page.waitForSelector("#token");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "token", "the field is focused");
    await page.keyboard.type(box.token());
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const el = document.activeElement!;
      return { tag: el.tagName, text: el.textContent, outline: getComputedStyle(el).outlineStyle };
    });
    assert.deepEqual(
      { tag: focused.tag, text: focused.text },
      { tag: "BUTTON", text: "Sign in" },
      "Tab goes to the button",
    );
    assert.notEqual(focused.outline, "none", "the focused button shows a focus ring");
    await page.keyboard.press("Enter");
    await page.getByTestId("who").filter({ hasText: "admin (admin)" }).waitFor({ timeout: 15_000 });
    // Live over Server-Sent Events (GET /v1/stream, read with fetch: the token is in a header).
    await page.locator('[data-testid="connection"][data-mode="live"]').waitFor({ timeout: 15_000 });
    // The skip link is the first stop after sign-in and lands on the main landmark.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to the fleet");
    assert.equal(await page.getByRole("main").count(), 1);
    assert.equal(await page.getByRole("banner").count(), 1);
    assert.ok((await page.getByRole("heading", { level: 2 }).count()) >= 6, "one heading per section");
    // The data plane names the engine that serves each service.
    assert.equal(await page.getByTestId("engine-api").textContent({ timeout: 15_000 }), "embedded");
  });

  test("a killed instance goes failing → recovering → verified, with its incident's timeline", async () => {
    const page = await newPage();
    await logIn(page, box.apiPort, box.token());
    // The victim starts healthy: on a busy machine an instance of this shared fleet may have been
    // restarted by a missed probe just before (CI saw it shown recovering before the kill), and
    // its pid is read once it is steady again.
    const victimName = (await box.get<{ services: { instances: { name: string }[] }[] }>("/v1/status"))
      .services[0]!.instances[1]!.name;
    await waitFor(
      async () =>
        (await page.locator(`#topology [data-instance="${victimName}"]`).getAttribute("data-state")) ===
        "healthy",
      { timeoutMs: 30_000, what: `${victimName} shown healthy before the kill` },
    );
    const status = await box.get<{ services: { instances: { name: string; pid: number | null }[] }[] }>(
      "/v1/status",
    );
    const victim = status.services[0]!.instances[1]!;
    assert.equal(victim.name, victimName);
    assert.ok(victim.pid !== null);
    // Every state the page shows for the victim, in order (the page may skip one that lasted less
    // than a refresh; the incident's timeline keeps every phase).
    await page.evaluate((name) => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      const note = (): void => {
        const state = document
          .querySelector(`#topology [data-instance="${name}"]`)
          ?.getAttribute("data-state");
        if (state && seen.at(-1) !== state) seen.push(state);
      };
      note();
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true });
    }, victim.name);
    process.kill(victim.pid, "SIGKILL");

    const card = page.locator(`[data-incident][data-instance="${victim.name}"]`);
    await card.waitFor({ timeout: 15_000 });
    await page
      .locator(`[data-incident][data-instance="${victim.name}"] .timeline [data-phase="verified"]`)
      .waitFor({ timeout: 60_000 });
    const phases = await card
      .locator(".timeline [data-phase]")
      .evaluateAll((lis) => lis.map((li) => li.getAttribute("data-phase")));
    const order = ["detected", "action-started", "mitigated", "verified"].map((p) => phases.indexOf(p));
    assert.ok(
      order.every((i) => i >= 0) && order.every((i, n) => n === 0 || i > order[n - 1]!),
      `timeline in order: ${phases.join(" → ")}`,
    );
    const timings = await card.locator(".timings dd").allTextContents();
    assert.equal(timings.length, 3);
    for (const t of timings) assert.match(t, /\d/, `TTD, TTM and TTS all measured: ${timings.join(", ")}`);

    const instance = page.locator(`#topology [data-instance="${victim.name}"]`);
    await waitFor(
      async () => ["verified", "healthy"].includes((await instance.getAttribute("data-state")) ?? ""),
      {
        timeoutMs: 30_000,
        what: `${victim.name} shown verified or healthy again`,
      },
    );
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const rank: Record<string, number> = {
      healthy: 0,
      failing: 1,
      recovering: 2,
      "recovered-unverified": 3,
      verified: 4,
    };
    assert.equal(seen[0], "healthy", `shown healthy when the kill came: ${seen.join(" → ")}`);
    const during = seen.slice(1);
    assert.ok(
      during.some((s) => s === "failing" || s === "recovering" || s === "recovered-unverified"),
      `the page showed the instance down and recovering, not only healthy: ${seen.join(" → ")}`,
    );
    const ranks = during.filter((s) => s !== "healthy").map((s) => rank[s] ?? -1);
    assert.ok(
      ranks.every((r, n) => r >= 0 && (n === 0 || r >= ranks[n - 1]!)),
      `states shown in recovery order: ${seen.join(" → ")}`,
    );
    // The text says it too, not only the colour.
    assert.match((await instance.locator(".badge").textContent()) ?? "", /verified|healthy/);
  });

  test("a bad canary deployed from the page is rolled back, with the failed check shown", async () => {
    const page = await newPage();
    await logIn(page, box.apiPort, box.token());
    const load = startLoad(ports.api!, 40);
    try {
      await page.getByLabel("Release to deploy").fill("v2-bad");
      await page.getByRole("button", { name: "Deploy…" }).click();
      const dialog = page.getByRole("dialog", { name: "Deploy v2-bad to api?" });
      await dialog.waitFor();
      await dialog.getByRole("button", { name: "Deploy", exact: true }).click();
      await page.getByTestId("outcome").filter({ hasText: "accepted" }).waitFor({ timeout: 10_000 });

      const rollout = page.locator('[data-rollout][data-kind="deploy"][data-phase="rolled-back"]');
      await rollout.waitFor({ timeout: 60_000 });
      assert.match((await rollout.textContent()) ?? "", /v1 → v2-bad/);
      assert.match((await rollout.textContent()) ?? "", /rolled back/);
      assert.ok(
        (await rollout.locator('[data-verdict="fail"]').count()) >= 1,
        "the failed step's check is shown",
      );
      assert.match(
        (await rollout.locator('[data-verdict="fail"]').first().textContent()) ?? "",
        /error rate/,
      );
      assert.ok(load.sent() > 0);
      const releases = await box.get<Releases>("/v1/services/api/releases");
      assert.equal(releases.active, "v1", "the API agrees: v1 serves");
    } finally {
      await load.stop();
    }
  });

  test("a viewer sees its actions refused with the API's message, and nothing changes", async () => {
    const created = await box.api("POST", "/v1/tokens", { name: "dash-viewer", role: "viewer" });
    assert.equal(created.status, 201);
    const { secret } = (await created.json()) as { secret: string };
    const before = await box.get<Releases>("/v1/services/api/releases");

    const page = await newPage();
    await logIn(page, box.apiPort, secret);
    await page.getByTestId("who").filter({ hasText: "dash-viewer (viewer)" }).waitFor();
    await page.getByTestId("read-only").waitFor();
    await page.getByRole("button", { name: "Roll back…" }).click();
    const dialog = page.getByRole("dialog", { name: /Roll back api/ });
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel(/Force/).isDisabled(), true, "force is for admins only");
    await dialog.getByRole("button", { name: "Roll back", exact: true }).click();
    const outcome = page.getByRole("alert").filter({ hasText: "HS_FORBIDDEN" });
    await outcome.waitFor({ timeout: 10_000 });
    assert.match((await outcome.textContent()) ?? "", /403 HS_FORBIDDEN.*operator/);

    await page.getByRole("button", { name: "Fail over zone-a" }).click();
    await page
      .getByRole("dialog", { name: /Fail over zone-a/ })
      .getByRole("button", { name: "Fail over" })
      .click();
    await page
      .getByRole("alert")
      .filter({ hasText: "Fail over zone-a: refused (403 HS_FORBIDDEN)" })
      .waitFor();

    const afterwards = await box.get<Releases>("/v1/services/api/releases");
    assert.equal(afterwards.rollouts.length, before.rollouts.length, "no rollout started");
    const failover = await box.get<{ zones: { zone: string; share: number }[] }>("/v1/failover");
    assert.equal(failover.zones.find((z) => z.zone === "zone-a")?.share, 1, "zone-a keeps its traffic");
  });

  test("at 390 px wide everything fits in one column: no horizontal scrolling", async () => {
    const page = await newPage({ width: 390, height: 844 });
    await logIn(page, box.apiPort, box.token());
    await page.locator("#releases [data-releases]").first().waitFor();
    await page.locator("#incidents [data-incident]").first().waitFor();
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      widest: Math.max(
        ...[...document.querySelectorAll("main *, header *")].map((el) => el.getBoundingClientRect().right),
      ),
    }));
    assert.ok(
      widths.scroll <= widths.client,
      `page ${widths.scroll}px wide in a ${widths.client}px viewport`,
    );
    assert.ok(widths.widest <= 390.5, `an element reaches ${widths.widest}px`);
  });
});

/**
 * A fleet whose release fails open: `api` runs `v1-open`, started with `AUTH_DISABLED=1`, so its
 * `/admin` answers 200 without credentials (the fault API on, so a test can close the guard live).
 */
function openGuardFleet(basePort: number): string {
  return `version: 1
name: dashboard-invariants
defaults:
${DEMO_PROBES}
  restart: { backoff: { initial: 200ms, max: 2s, multiplier: 2, jitter: 0.1 }, stopGracePeriod: 2s, resetAfter: 2s }
  invariants:
    protectedPaths: [{ path: /admin }]
    policyHash: { path: /policy }
    interval: 300ms
    timeout: 300ms
services:
  api:
    replicas: 2
    basePort: ${basePort}
    placement: { zones: [zone-a, zone-b] }
    release: v1-open
    releases:
${demoRelease("v1-open", { AUTH_DISABLED: "1", APP_ALLOW_FAULT_API: "1" })}
`;
}

describe("dashboard: security invariants in a browser", { skip: skip ?? false }, () => {
  let box: Sandbox;
  let browser: Browser;
  let context: BrowserContext | undefined;
  const pageErrors: string[] = [];

  before(async () => {
    ensureDashboardBuilt();
    box = await sandbox("homeostat-browser-inv-");
    box.up(box.file("fleet.yaml", openGuardFleet(await freePortRange(2))));
    await readyStatus(box, 2);
    browser = await launchBrowser();
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close();
    await box?.cleanup();
  });

  test("a release started with AUTH_DISABLED=1: the broken invariant in the services list and the warnings, the gate's reason on a recovered incident, then held once the guard is back", async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("pageerror", (error) => {
      pageErrors.push(error.message);
    });
    await logIn(page, box.apiPort, box.token());

    // The services list: broken, naming the invariant and both instances (a first round may have
    // seen one instance ready).
    const service = page.locator('#topology [data-service="api"]');
    const broken = service.locator('[data-invariants="broken"] [data-invariant="protected-path:GET /admin"]');
    await broken.filter({ hasText: "api-0, api-1" }).waitFor({ timeout: 30_000 });
    assert.match((await broken.textContent()) ?? "", /invariant broken.*on api-0, api-1/);
    assert.match((await broken.textContent()) ?? "", /GET \/admin answered 200 without credentials/);
    // A warning, as a partial recovery is.
    const warning = page.locator("#warnings li").filter({ hasText: "security invariant broken" });
    await warning.waitFor();
    assert.match((await warning.textContent()) ?? "", /api: protected-path:GET \/admin on api-0, api-1/);

    // The CLI says it too, and its --json carries the verdict.
    const text = await box.cli(["status", "--api-port", String(box.apiPort)]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^ {2}! INVARIANT BROKEN protected-path:GET \/admin on api-0, api-1 \(since .*\): GET \/admin answered 200/m,
    );
    const json = await box.cli(["status", "--json", "--api-port", String(box.apiPort)]);
    assert.equal(json.code, 0, json.stderr);
    const verdict = (
      JSON.parse(json.stdout) as { invariants?: Record<string, { ok: boolean; broken: unknown[] }> }
    ).invariants?.api;
    assert.equal(verdict?.ok, false);
    assert.ok((verdict?.broken.length ?? 0) >= 2, "both instances named in --json");

    // A killed instance is restarted (mitigated) but its incident is not verified: the gate says why.
    const status = await box.get<{
      services: { instances: { name: string; pid: number | null; port: number }[] }[];
    }>("/v1/status");
    const instances = status.services[0]!.instances;
    const victim = instances[0]!;
    assert.ok(victim.pid !== null);
    process.kill(victim.pid, "SIGKILL");
    const wait = page.locator(`[data-incident][data-instance="${victim.name}"] [data-testid="gate-wait"]`);
    await wait
      .locator("[data-blocking]")
      .filter({ hasText: /invariant broken: GET \/admin answered 200 without credentials/ })
      .waitFor({ timeout: 30_000 });
    assert.match((await wait.textContent()) ?? "", /Recovered, not verified yet/);

    // The guard closed on every instance (live, through the app's fault API): held, no warning.
    for (const i of instances) {
      const closed = await fetch(`http://127.0.0.1:${i.port}/policy`, {
        method: "POST",
        body: JSON.stringify({ authDisabled: false }),
      });
      assert.equal(closed.status, 200);
    }
    await service.locator('[data-invariants="held"]').waitFor({ timeout: 15_000 });
    assert.equal(
      await page.locator("#warnings li").filter({ hasText: "security invariant broken" }).count(),
      0,
    );
    // …and the incident the gate held back is verified.
    await page
      .locator(`[data-incident][data-instance="${victim.name}"] .timeline [data-phase="verified"]`)
      .waitFor({ timeout: 30_000 });
    assert.equal(await wait.count(), 0, "no longer waiting for the gate");
    assert.deepEqual(pageErrors, [], "no script error in the page");
  });
});
