/**
 * nginx and HAProxy as the bench runs them: one process each, on a free loopback port, in front
 * of the bench's three instances, with the configs of `configs.ts`.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { haproxyServerStates } from "../failover/haproxyFleet.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { Child } from "../proxy/child.ts";
import { haproxyConfig, nginxConfig } from "./configs.ts";

export interface ProxyUnderTest {
  name: "nginx" | "haproxy";
  port: number;
  config: string;
  /** Resolves once the proxy sees every server as up (HAProxy's `show stat`; nginx has no such view). */
  waitAllUp(names: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startNginx(
  dir: string,
  upstreamPorts: number[],
  timeoutMs: number,
  ledger: ProcessLedger,
): Promise<ProxyUnderTest> {
  const prefix = join(dir, "nginx");
  mkdirSync(join(prefix, "tmp"), { recursive: true });
  const port = await freePort();
  const config = nginxConfig({ prefix, port, upstreamPorts, timeoutMs });
  const file = join(prefix, "nginx.conf");
  writeFileSync(file, config);
  const child = new Child("nginx", "nginx", ["-p", prefix, "-c", file], { ledger });
  await child.waitListening(port);
  return { name: "nginx", port, config, waitAllUp: async () => {}, stop: () => child.stop() };
}

export async function startHaproxy(
  dir: string,
  upstreamPorts: number[],
  timeoutMs: number,
  ledger: ProcessLedger,
): Promise<ProxyUnderTest> {
  const home = join(dir, "haproxy");
  mkdirSync(home, { recursive: true });
  const port = await freePort();
  const socket = join(home, "haproxy.sock");
  const config = haproxyConfig({ port, upstreamPorts, timeoutMs, socket });
  const file = join(home, "haproxy.cfg");
  writeFileSync(file, config);
  const child = new Child("haproxy", "haproxy", ["-db", "-f", file], { ledger });
  await child.waitListening(port);
  return {
    name: "haproxy",
    port,
    config,
    waitAllUp: async (names) => {
      await waitFor(
        async () => {
          const states = await haproxyServerStates(socket);
          return names.every((n) => states[n] === "UP");
        },
        { timeoutMs: 30_000, intervalMs: 50, what: "HAProxy: every server UP" },
      );
    },
    stop: () => child.stop(),
  };
}
