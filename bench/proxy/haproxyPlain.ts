/**
 * Plain HAProxy for the proxy bench, with exactly the configuration the managed HAProxy of the
 * `haproxy` engine runs for the same service: rendered by the engine's own renderer
 * (src/dataplane/haproxy/haproxyConfig.ts), in the bench's directory, then changed only where
 * Homeostat's run-time driving would change it. So "Homeostat + HAProxy ÷ HAProxy" compares the
 * same proxy doing the same work, and what is left is Homeostat's own: the Runtime API driving it,
 * and the data plane reading and counting a log line per request.
 *
 * What differs from the managed one, and why:
 * - the server is written with its address and weight (`server bench-0 127.0.0.1:UP weight 256`);
 *   the managed one renders `127.0.0.1:1 disabled weight 1` and Homeostat sets address, weight
 *   (256 for the only member) and state through the Runtime API: the end state is the same;
 * - it is started in the foreground (`haproxy -db -f`), not master-worker: nothing drives it;
 * - the per-request log line: the "haproxy" contender sends none (the `log`, `option dontlognull`
 *   and `log-format` lines are left out), the "haproxy-log" contender sends the engine's exact line
 *   through the same log ring to a TCP sink that only counts (logSink.ts), so the log line's own
 *   cost is measured apart from
 *   what Homeostat's data plane does with it.
 */

import { writeFileSync } from "node:fs";
import { renderHaproxyConfig } from "../../src/dataplane/haproxy/haproxyConfig.ts";
import { ensureHaproxyDir, haproxyPaths } from "../../src/dataplane/haproxy/haproxyPaths.ts";
import type { TrafficSpec } from "../../src/spec/index.ts";

export interface PlainHaproxyInput {
  service: string;
  port: number;
  upstreamPort: number;
  traffic: TrafficSpec;
  /** Server slots the managed one renders (`<service>-0` … `<service>-(slots-1)`); slot 0 serves. */
  slots: number;
  /** TCP port of the log sink, or null: no log line (and no log ring). */
  logPort: number | null;
}

/** Lines of the rendered configuration that only exist for the log line (and its sampling). */
const LOG_LINES = [
  /^\s*log\s+ring@/,
  /^\s*option dontlognull\s*$/,
  /^\s*log-format\s/,
  /^\s*http-request set-var\(txn\.hs_logp\)/,
  /^\s*http-response set-log-level silent/,
];

/**
 * The managed configuration for `input` with its files under `stateDir` (as the engine lays
 * them out), changed as the header says.
 * @throws when the rendered server line of slot 0 is not found (the renderer changed: the bench
 *   must follow it, not guess)
 */
export function plainHaproxyConfig(stateDir: string, input: PlainHaproxyInput): string {
  const service = input.service;
  const rendered = renderHaproxyConfig({
    services: [
      {
        name: service,
        port: input.port,
        traffic: input.traffic,
        servers: Array.from({ length: input.slots }, (_, slot) => `${service}-${slot}`),
      },
    ],
    paths: haproxyPaths(stateDir),
    // Without a log line this port is never used (its lines are taken out).
    logPort: input.logPort ?? 9,
  });
  const placeholder = new RegExp(`^(\\s*server ${service}-0) 127\\.0\\.0\\.1:1 disabled weight 1(\\b.*)$`);
  let found = false;
  // Without a log line the ring section goes too (its forwarder would keep connecting to nothing).
  let inRing = false;
  const lines = rendered.split("\n").flatMap((line) => {
    if (input.logPort === null && /^ring\s/.test(line)) inRing = true;
    if (inRing) {
      if (line === "") inRing = false;
      return [];
    }
    const server = placeholder.exec(line);
    if (server !== null) {
      found = true;
      return [`${server[1]} 127.0.0.1:${input.upstreamPort} weight 256${server[2]}`];
    }
    return input.logPort === null && LOG_LINES.some((re) => re.test(line)) ? [] : [line];
  });
  if (!found)
    throw new Error(`the rendered configuration has no placeholder line for ${service}-0:\n${rendered}`);
  return lines.join("\n");
}

/**
 * Write the config and its (empty) shedding map under `stateDir/dataplane/haproxy/` (the engine's
 * layout; the bench's snapshot sends no shedding either); returns the config's path.
 */
export function writePlainHaproxy(stateDir: string, input: PlainHaproxyInput): string {
  const paths = haproxyPaths(stateDir);
  ensureHaproxyDir(paths);
  writeFileSync(paths.shedMap(input.service), "");
  // Empty: every answered request logged (the haproxy-log contender measures the full line's cost).
  writeFileSync(paths.logMap(input.service), "");
  writeFileSync(paths.config, plainHaproxyConfig(stateDir, input));
  return paths.config;
}
