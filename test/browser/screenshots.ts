/**
 * Makes the dashboard's screenshots in docs/img/ from a real fleet: two services over three zones
 * under load, one instance killed and verified, a bad canary rolled back, and a second instance
 * killed just before each picture so one is caught recovering: dashboard-desktop.png (the first
 * 1280 × 1000 px), dashboard-desktop-full.png (the whole page) and dashboard-mobile.png (390 px).
 *
 * Usage: npm run screenshots   (node test/browser/screenshots.ts [OUT_DIR])
 */

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { allInstances, REPO, readyStatus, type StatusDoc, sandbox } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import {
  browserSkipReason,
  ensureDashboardBuilt,
  launchBrowser,
  logIn,
  startLoad,
  writeFleet,
} from "./harness.ts";

const outDir = resolve(process.argv[2] ?? join(REPO, "docs/img"));
const skip = browserSkipReason();
if (skip !== null) {
  console.error(`screenshots: ${skip}`);
  process.exit(1);
}
mkdirSync(outDir, { recursive: true });
ensureDashboardBuilt();

interface Incident {
  id: number;
  instance: string;
  status: string;
  verifiedAt: number | null;
}
interface Releases {
  rollouts: { finished: boolean; state: { phase: string } }[];
}

const box = await sandbox("homeostat-shots-");
const loads: ReturnType<typeof startLoad>[] = [];
const browser = await launchBrowser();
try {
  const { file, ports } = await writeFleet(box, { shop: true });
  box.up(file);
  await readyStatus(
    box,
    6,
    (s) => (s as { dataPlane?: { connected?: boolean } }).dataPlane?.connected === true,
  );
  loads.push(startLoad(ports.api!, 30), startLoad(ports.web!, 15));

  const pidOf = async (name: string): Promise<number> => {
    const status = await box.get<StatusDoc>("/v1/status");
    const pid = allInstances(status).find((i) => i.name === name)?.pid;
    if (pid == null) throw new Error(`${name} has no pid`);
    return pid;
  };
  // An incident that goes all the way to verified.
  process.kill(await pidOf("web-1"), "SIGKILL");
  await waitFor(
    async () => {
      const { incidents } = await box.get<{ incidents: Incident[] }>("/v1/incidents?service=web");
      return incidents.some((i) => i.instance === "web-1" && i.verifiedAt !== null);
    },
    { timeoutMs: 60_000, what: "web-1's incident verified" },
  );
  // A bad canary, rolled back by its analysis.
  const deploy = await box.api("POST", "/v1/services/api/deploy", { version: "v2-bad" });
  if (deploy.status !== 202) throw new Error(`deploy: ${deploy.status} ${await deploy.text()}`);
  await waitFor(
    async () => {
      const r = await box.get<Releases>("/v1/services/api/releases");
      return r.rollouts.some((x) => x.finished && x.state.phase === "rolled-back");
    },
    { timeoutMs: 60_000, what: "the v2-bad deploy rolled back" },
  );

  const shoot = async (
    name: string,
    viewport: { width: number; height: number },
    options: { fullPage: boolean; scale: number },
  ) => {
    const context = await browser.newContext({
      viewport,
      deviceScaleFactor: options.scale,
      colorScheme: "light",
    });
    const page = await context.newPage();
    await logIn(page, box.apiPort, box.token());
    await page.locator('[data-rollout][data-phase="rolled-back"]').waitFor({ timeout: 15_000 });
    await page
      .locator('#incidents [data-incident] [data-phase="verified"]')
      .first()
      .waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="connection"][data-mode="live"]').waitFor({ timeout: 15_000 });
    // Rates need two reads of the counters.
    await page.locator('[data-testid="rps-api"]').filter({ hasText: "/s" }).waitFor({ timeout: 15_000 });
    // One instance caught mid-recovery.
    process.kill(await pidOf("api-2"), "SIGKILL");
    await page
      .locator('#topology [data-instance="api-2"]:not([data-state="healthy"]):not([data-state="verified"])')
      .waitFor({ timeout: 15_000 });
    await page.locator("#incidents [data-incident][data-status='open']").first().waitFor({ timeout: 15_000 });
    const path = join(outDir, `dashboard-${name}.png`);
    await page.screenshot({ path, fullPage: options.fullPage });
    console.log(`screenshots: ${path}`);
    await context.close();
    // Let api-2 come back before the next picture.
    await readyStatus(box, 6, () => true, 30_000);
  };
  // The first screen for the README, the whole page for docs/dashboard.md, and a phone.
  await shoot("desktop", { width: 1280, height: 1000 }, { fullPage: false, scale: 1 });
  await shoot("desktop-full", { width: 1280, height: 1000 }, { fullPage: true, scale: 1 });
  await shoot("mobile", { width: 390, height: 1000 }, { fullPage: false, scale: 2 });
} finally {
  await Promise.all(loads.map((l) => l.stop()));
  await browser.close();
  await box.cleanup();
}
