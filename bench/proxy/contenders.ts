/**
 * What the proxy bench puts load on: one upstream (the demo app, or a tiny fixed-response nginx),
 * and the contenders in front of it (or none: direct), each one process with one worker on a free
 * loopback port.
 */

import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { APP, freePort } from "../../test/helpers/e2e.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { Child } from "./child.ts";
import { haproxyConfig, nginxProxyConfig, nginxStaticConfig, writeConfig } from "./configs.ts";
import { onCpus } from "./cpus.ts";
import type { FeedController } from "./feedController.ts";
import { startHomeostatDataPlane } from "./homeostatDataPlane.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const BARE_NODE_PROXY = join(HERE, "bareNodeProxy.ts");
const BARE_SERVICE_PROXY = join(HERE, "callgrind", "bareProxy.ts");

export type UpstreamKind = "demo" | "static";
/** `node-bare` is a reference (bareNodeProxy.ts): Node's HTTP stack with none of Homeostat's work. */
export const CONTENDERS = ["direct", "homeostat", "node-bare", "haproxy", "nginx"] as const;
/**
 * Old code, only when `BENCH_OLD_ROOT` names another checkout: that checkout's request path as a
 * bare `ServiceProxy` (callgrind/bareProxy.ts, what the Homeostat contender was up to 9a2ea64),
 * paired with today's data-plane process like every other peer.
 */
export const OLD_CODE = "homeostat-old";
export type ContenderName = (typeof CONTENDERS)[number] | typeof OLD_CODE;

/** The contenders of a run: the five, and the old code when a checkout of it is given. */
export function contendersFor(oldRoot: string | null): ContenderName[] {
  return oldRoot === null ? [...CONTENDERS] : [...CONTENDERS, OLD_CODE];
}

export interface Running {
  port: number;
  child: Child | null;
  /** The config file used, when there is one. */
  config: string | null;
  /** A Node contender that reports its event-loop delay on SIGUSR2 (loopDelay.ts). */
  reportsLoopDelay: boolean;
  /** Homeostat: the bench's fake controller on the data plane's config feed (homeostatDataPlane.ts). */
  feed: FeedController | null;
  stop(): Promise<void>;
}

/** @param cpus `taskset -c` list to run the upstream on (null: not pinned) */
export async function startUpstream(
  kind: UpstreamKind,
  dir: string,
  ledger: ProcessLedger,
  cpus: string | null = null,
): Promise<Running> {
  const port = await freePort();
  if (kind === "demo") {
    const [command, args] = onCpus(cpus, process.execPath, [APP, "--port", String(port), "--name", "u0"]);
    const child = new Child("demo app", command, args, { ledger });
    await child.waitListening(port);
    return { port, child, config: null, reportsLoopDelay: false, feed: null, stop: () => child.stop() };
  }
  const prefix = join(dir, "upstream-static");
  mkdirSync(prefix, { recursive: true });
  const config = writeConfig(prefix, "nginx.conf", nginxStaticConfig({ prefix, port }));
  const [command, args] = onCpus(cpus, "nginx", ["-p", prefix, "-c", config]);
  const child = new Child("static nginx", command, args, { ledger });
  await child.waitListening(port);
  return { port, child, config, reportsLoopDelay: false, feed: null, stop: () => child.stop() };
}

/**
 * @param cpus `taskset -c` list to run the contender on (null: not pinned)
 * @param oldRoot the old code's checkout (`homeostat-old` only)
 */
export async function startContender(
  name: ContenderName,
  upstreamPort: number,
  dir: string,
  ledger: ProcessLedger,
  cpus: string | null = null,
  oldRoot: string | null = null,
): Promise<Running> {
  if (name === "direct") {
    return {
      port: upstreamPort,
      child: null,
      config: null,
      reportsLoopDelay: false,
      feed: null,
      stop: async () => {},
    };
  }
  const port = await freePort();
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  if (name === "homeostat") {
    const dataPlane = await startHomeostatDataPlane(port, upstreamPort, home, ledger, cpus);
    return {
      port,
      child: dataPlane.child,
      config: dataPlane.snapshotFile,
      reportsLoopDelay: true,
      feed: dataPlane.feed,
      stop: () => dataPlane.stop(),
    };
  }
  let child: Child;
  let config: string | null;
  if (name === "node-bare") {
    config = null;
    child = new Child(
      "bare node proxy",
      ...onCpus(cpus, process.execPath, [
        BARE_NODE_PROXY,
        "--port",
        String(port),
        "--upstream-port",
        String(upstreamPort),
      ]),
      { ledger },
    );
  } else if (name === OLD_CODE) {
    if (oldRoot === null) throw new Error(`${OLD_CODE} needs BENCH_OLD_ROOT (a checkout of the old code)`);
    config = join(home, "fleet.yaml");
    child = new Child(
      "old code (bare ServiceProxy)",
      ...onCpus(cpus, process.execPath, [
        BARE_SERVICE_PROXY,
        "--root",
        oldRoot,
        "--dir",
        home,
        "--port",
        String(port),
        "--upstream-port",
        String(upstreamPort),
      ]),
      { ledger },
    );
  } else if (name === "haproxy") {
    config = writeConfig(home, "haproxy.cfg", haproxyConfig({ port, upstreamPort }));
    child = new Child("haproxy", ...onCpus(cpus, "haproxy", ["-db", "-f", config]), { ledger });
  } else {
    config = writeConfig(home, "nginx.conf", nginxProxyConfig({ prefix: home, port, upstreamPort }));
    child = new Child("nginx", ...onCpus(cpus, "nginx", ["-p", home, "-c", config]), { ledger });
  }
  await child.waitListening(port);
  return {
    port,
    child,
    config,
    reportsLoopDelay: name === "node-bare",
    feed: null,
    stop: () => child.stop(),
  };
}
