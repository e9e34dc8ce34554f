/**
 * The dashboard's Automation panel in a real browser against a real fleet: paused from the page
 * (with a reason), the panel says by whom, why and since when; a killed instance's restart is
 * shown held with its reason; resumed from the page, the instance comes back and the panel says
 * automation runs.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { allInstances, readyStatus, type Sandbox, type StatusDoc, sandbox } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { browserSkipReason, ensureDashboardBuilt, launchBrowser, logIn, writeFleet } from "./harness.ts";

const skip = browserSkipReason();

describe("the Automation panel", { skip: skip ?? false }, () => {
  let box: Sandbox;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    ensureDashboardBuilt();
    box = await sandbox("homeostat-browser-");
    box.up((await writeFleet(box)).file);
    await readyStatus(box, 3);
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on("pageerror", (error) => {
      pageErrors.push(error.message);
    });
  });

  after(async () => {
    await browser?.close();
    await box?.cleanup();
  });

  test("pause with a reason, a held restart with its reason, resume: all from the page", async () => {
    await logIn(page, box.apiPort, box.token());
    const state = page.getByTestId("brakes-state");
    await state.filter({ hasText: "running" }).waitFor();

    await page.getByRole("button", { name: "Pause automation" }).click();
    const pauseDialog = page.getByRole("dialog", { name: /Pause automation/ });
    await pauseDialog.getByLabel(/Reason/).fill("browser drill");
    await pauseDialog.getByRole("button", { name: "Pause", exact: true }).click();
    await page.getByTestId("outcome").filter({ hasText: "accepted" }).waitFor({ timeout: 10_000 });
    await state.filter({ hasText: "paused" }).waitFor({ timeout: 10_000 });
    assert.match((await state.textContent()) ?? "", /paused by admin since .*browser drill/);

    const victim = allInstances(await box.get<StatusDoc>("/v1/status")).find((i) => i.name === "api-1")!;
    process.kill(victim.pid!, "SIGKILL");
    const held = page.locator('[data-held="api-1"][data-rule="paused"]');
    await held.waitFor({ timeout: 20_000 });
    assert.match((await held.textContent()) ?? "", /restart of api-1.*automation is paused by admin/);

    await page.getByRole("button", { name: "Resume automation" }).click();
    const resumeDialog = page.getByRole("dialog", { name: /Resume automation/ });
    await resumeDialog.getByRole("button", { name: "Resume", exact: true }).click();
    await state.filter({ hasText: "running" }).waitFor({ timeout: 10_000 });
    await waitFor(
      async () =>
        allInstances(await box.get<StatusDoc>("/v1/status")).find((i) => i.name === "api-1")?.state ===
        "ready",
      { timeoutMs: 30_000, what: "api-1 restarted after the resume" },
    );
    await held.waitFor({ state: "detached", timeout: 10_000 });
    assert.deepEqual(pageErrors, [], "no script error in the page");
  });
});
