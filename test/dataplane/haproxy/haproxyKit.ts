/**
 * Test kit for the managed HAProxy: a state dir, an HAProxy started from rendered configuration
 * (stopped by `t.after`, even when the test fails), Node upstreams on ephemeral ports, a UDP log
 * listener, and a plain HTTP client. Everything is on 127.0.0.1 and cleaned up.
 */

import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import {
  type HaproxyServiceConfig,
  renderHaproxyConfig,
} from "../../../src/dataplane/haproxy/haproxyConfig.ts";
import {
  ensureHaproxyDir,
  type HaproxyPaths,
  haproxyPaths,
} from "../../../src/dataplane/haproxy/haproxyPaths.ts";
import { findHaproxy, HaproxyProcess } from "../../../src/dataplane/haproxy/haproxyProcess.ts";

export interface Cleanup {
  after(fn: () => Promise<void> | void): void;
}

export const HAPROXY: string = (() => {
  const found = findHaproxy();
  if (found === null) throw new Error("these tests need HAProxy (apt-get install haproxy)");
  return found;
})();

/** A fresh state dir whose HAProxy files are ready (directory and empty shed maps), removed after. */
export function stateDir(t: Cleanup, services: readonly string[] = []): { dir: string; paths: HaproxyPaths } {
  const dir = mkdtempSync(join(tmpdir(), "hs-haproxy-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const paths = haproxyPaths(dir);
  ensureHaproxyDir(paths);
  for (const service of services) writeFileSync(paths.shedMap(service), "");
  return { dir, paths };
}

/** Start HAProxy with `services`; stopped (and every process of its group checked gone) after the test. */
export async function startHaproxy(
  t: Cleanup,
  paths: HaproxyPaths,
  services: readonly HaproxyServiceConfig[],
  syslogPort: number,
): Promise<HaproxyProcess> {
  const config = renderHaproxyConfig({ services, paths, syslogPort });
  const proc = await HaproxyProcess.start({ binary: HAPROXY, paths, config });
  t.after(() => proc.stop(2_000));
  return proc;
}

export interface Upstream {
  port: number;
  hits: number;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/** A Node HTTP upstream answering `200 <name>` (or what `handler` is replaced with), closed after. */
export async function upstream(t: Cleanup, name: string): Promise<Upstream> {
  const up: Upstream = {
    port: 0,
    hits: 0,
    handler: (_req, res) => res.end(name),
  };
  const server = createServer((req, res) => {
    up.hits++;
    up.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  up.port = (server.address() as { port: number }).port;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return up;
}

/** A UDP syslog receiver on 127.0.0.1 collecting every datagram as text. */
export async function logListener(t: Cleanup): Promise<{ port: number; lines: string[] }> {
  const socket = createSocket("udp4");
  const lines: string[] = [];
  socket.on("message", (message) => lines.push(message.toString("utf8")));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, lines };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request through HAProxy (a fresh connection each time: no pool state across steps). */
export async function get(
  port: number,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Answer> {
  const res = await request(`http://127.0.0.1:${port}/`, {
    method: method as "GET",
    headers: { connection: "close", ...headers },
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}
