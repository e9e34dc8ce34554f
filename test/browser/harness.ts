/**
 * What the dashboard's browser tests and the screenshot script share: Debian's Chromium driven by
 * playwright-core (never a downloaded browser), the dashboard built when missing, a demo fleet
 * with a data plane and a release that fails requests, a load loop, and the login.
 */

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import {
  DEMO_PROBES,
  demoRelease,
  freePort,
  freePortRange,
  NODE,
  REPO,
  type Sandbox,
} from "../helpers/e2e.ts";

/** Debian's `chromium` package (`.ci/run` installs it when missing). */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * Why the browser tests cannot run here, or null when they can. Only a missing Chromium outside CI
 * skips them; in CI (`CI` set, as `.ci/run` does) they run and a missing browser fails them.
 */
export function browserSkipReason(): string | null {
  if (existsSync(CHROMIUM)) return null;
  if (process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false") return null;
  return `${CHROMIUM} is not installed (apt-get install -y chromium; .ci/run does it in CI)`;
}

/**
 * Headless Chromium with the flags this machine needs: no sandbox (root), and no background
 * networking, component updates or sync, whose connections the closed network refuses.
 * playwright-core gives it a new empty profile directory.
 */
export async function launchBrowser(): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Builds ui/dist when it is missing (a checkout whose install skipped scripts). */
export function ensureDashboardBuilt(): void {
  if (existsSync(join(REPO, "ui/dist/index.html"))) return;
  const result = spawnSync(NODE, [join(REPO, "ui/scripts/build.ts")], { cwd: REPO, encoding: "utf8" });
  if (result.status !== 0)
    throw new Error(`building the dashboard failed:\n${result.stdout}${result.stderr}`);
}

/** Front ports of the fleet's services, by service. */
export type FrontPorts = Record<string, number>;

/**
 * A fleet file in `box`: `api` (3 instances over zones a, b, c, behind a front port) with a
 * release `v2-bad` that fails half of its requests, and, with `shop`, a second service `web`.
 * Fast probes and a short deploy (20 % then 100 %, 2 s a step) so a bad canary is judged quickly.
 */
export async function writeFleet(
  box: Sandbox,
  options: { shop?: boolean } = {},
): Promise<{ file: string; ports: FrontPorts }> {
  const services = options.shop ? ["api", "web"] : ["api"];
  const ports: FrontPorts = {};
  const blocks: string[] = [];
  for (const name of services) {
    const basePort = await freePortRange(6);
    const port = await freePort();
    ports[name] = port;
    blocks.push(
      [
        `  ${name}:`,
        "    replicas: 3",
        `    basePort: ${basePort}`,
        `    port: ${port}`,
        "    placement: { zones: [zone-a, zone-b, zone-c] }",
        "    capacity: { rps: 200 }",
        "    release: v1",
        "    releases:",
        demoRelease("v1"),
        demoRelease("v2-bad", { FAULT_ERROR_RATE: "0.5" }),
      ].join("\n"),
    );
  }
  const yaml = `version: 1
name: ${options.shop ? "shop" : "dashboard-e2e"}
hosts:
  host-a: { zone: zone-a }
  host-b: { zone: zone-b }
  host-c: { zone: zone-c }
defaults:
${DEMO_PROBES}
  restart:
    backoff: { initial: 200ms, max: 2s, multiplier: 2, jitter: 0.1 }
    crashLoop: { failures: 4, window: 60s }
    stopGracePeriod: 2s
    resetAfter: 2s
  deploy:
    steps: [20, 100]
    stepDuration: 2s
    stepDeadline: 15s
    soak: 3s
    analysis: { minRequests: 15, maxErrorRateIncrease: 2%, minP99Increase: 200ms }
  slo: { errorRate: 5%, p99: 1s }
services:
${blocks.join("\n")}
`;
  return { file: box.file("fleet.yaml", yaml), ports };
}

/**
 * GETs to a front port at about `rps` (each answered before the next is due, at most 8 at once)
 * until stopped: a deploy's canary analysis needs requests to judge.
 */
export function startLoad(port: number, rps = 40): { sent: () => number; stop: () => Promise<void> } {
  let sent = 0;
  let running = true;
  const inFlight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    if (!running || inFlight.size >= 8) return;
    sent++;
    const p = fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) })
      .then(async (r) => {
        await r.arrayBuffer();
      })
      .catch(() => undefined)
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 1000 / rps);
  return {
    sent: () => sent,
    async stop() {
      running = false;
      clearInterval(timer);
      await Promise.all([...inFlight]);
    },
  };
}

/** Opens the dashboard and signs in with `token`; resolves once the topology shows. */
export async function logIn(page: Page, apiPort: number, token: string): Promise<void> {
  await page.goto(`http://127.0.0.1:${apiPort}/`);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#topology [data-instance]").first().waitFor({ timeout: 15_000 });
}
