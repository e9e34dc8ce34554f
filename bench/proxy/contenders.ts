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
import { nginxProxyConfig, nginxStaticConfig, writeConfig } from "./configs.ts";
import { onCpus } from "./cpus.ts";
import type { FeedController } from "./feedController.ts";
import { writePlainHaproxy } from "./haproxyPlain.ts";
import { benchTraffic, startHomeostatDataPlane } from "./homeostatDataPlane.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const BARE_NODE_PROXY = join(HERE, "bareNodeProxy.ts");
const BARE_SERVICE_PROXY = join(HERE, "callgrind", "bareProxy.ts");
const LOG_SINK = join(HERE, "logSink.ts");

export type UpstreamKind = "demo" | "static";
/**
 * `node-bare` is a reference (bareNodeProxy.ts): Node's HTTP stack with none of Homeostat's work.
 * `homeostat-haproxy` is the data-plane process with the service on the `haproxy` engine (a
 * managed HAProxy moves the bytes); `haproxy` is plain HAProxy with the settings that engine
 * renders (haproxyPlain.ts), `haproxy-log` the same plus the engine's per-request log line sent to
 * a TCP sink (logSink.ts) as the engine's log ring does, to tell the log line's cost from the rest.
 */
export const CONTENDERS = [
  "direct",
  "homeostat",
  "homeostat-haproxy",
  "node-bare",
  "haproxy",
  "haproxy-log",
  "nginx",
] as const;
/** Contenders whose process is the data-plane process on the bench's config feed. */
export const FED_CONTENDERS: readonly ContenderName[] = ["homeostat", "homeostat-haproxy"];
/** The service name of the bench fleet (benchFleet.ts), also the plain HAProxy's backend. */
const SERVICE = "bench";
/** Server slots the managed HAProxy renders for one instance (2 × (highest slot + 1)). */
const SLOTS = 2;
/**
 * Old code, only when `BENCH_OLD_ROOT` names another checkout: that checkout's request path as a
 * bare `ServiceProxy` (callgrind/bareProxy.ts, what the Homeostat contender was up to 9a2ea64),
 * paired with today's data-plane process like every other peer.
 */
export const OLD_CODE = "homeostat-old";
export type ContenderName = (typeof CONTENDERS)[number] | typeof OLD_CODE;

/**
 * The contenders of a run: `picked` (all of them by default), and the old code when a checkout of
 * it is given.
 */
export function contendersFor(
  oldRoot: string | null,
  picked: readonly ContenderName[] = CONTENDERS,
): ContenderName[] {
  return oldRoot === null ? [...picked] : [...picked, OLD_CODE];
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
  /**
   * Every process whose CPU is the contender's, read at the start of each measured run (null: the
   * child alone). Homeostat + HAProxy: the data-plane process and the managed HAProxy's master and
   * worker; haproxy-log: HAProxy and its log sink.
   */
  cpuPids?: (() => number[]) | null;
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
  if (name === "homeostat" || name === "homeostat-haproxy") {
    const engine = name === "homeostat" ? "embedded" : "haproxy";
    const dataPlane = await startHomeostatDataPlane(port, upstreamPort, home, ledger, cpus, engine);
    return {
      port,
      child: dataPlane.child,
      config: dataPlane.snapshotFile,
      reportsLoopDelay: true,
      feed: dataPlane.feed,
      cpuPids: dataPlane.cpuPids,
      stop: () => dataPlane.stop(),
    };
  }
  if (name === "haproxy" || name === "haproxy-log") {
    const traffic = await benchTraffic(home, port, upstreamPort);
    let sink: Child | null = null;
    let logPort: number | null = null;
    if (name === "haproxy-log") {
      // The sink on the proxy's CPU, where the data plane's log receiver runs for the managed one.
      const started = new Child("log sink", ...onCpus(cpus, process.execPath, [LOG_SINK]), { ledger });
      sink = started;
      const line = await started.nextLine((l) => l.startsWith('{"port"'), 10_000);
      if (line === null) {
        await started.stop();
        throw new Error(`the log sink did not start:\n${started.output()}`);
      }
      logPort = (JSON.parse(line) as { port: number }).port;
    }
    const config = writePlainHaproxy(join(home, "state"), {
      service: SERVICE,
      port,
      upstreamPort,
      traffic,
      slots: SLOTS,
      logPort,
    });
    const child = new Child(name, ...onCpus(cpus, "haproxy", ["-db", "-f", config]), { ledger });
    const stop = async (): Promise<void> => {
      await child.stop();
      await sink?.stop();
    };
    await child.waitListening(port).catch(async (error: unknown) => {
      await stop();
      throw error;
    });
    return {
      port,
      child,
      config,
      reportsLoopDelay: false,
      feed: null,
      cpuPids: sink === null ? null : () => [child.pid, sink.pid],
      stop,
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
