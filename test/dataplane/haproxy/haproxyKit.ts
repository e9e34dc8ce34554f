/**
 * Test kit for the managed HAProxy: a state dir, an HAProxy started from rendered configuration
 * (stopped by `t.after`, even when the test fails), Node upstreams on ephemeral ports, a TCP
 * listener for the log ring, and a plain HTTP client. Everything is on 127.0.0.1 and cleaned up.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
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
  for (const service of services) {
    writeFileSync(paths.shedMap(service), "");
    writeFileSync(paths.logMap(service), "");
  }
  return { dir, paths };
}

/** Start HAProxy with `services`; stopped (and every process of its group checked gone) after the test. */
export async function startHaproxy(
  t: Cleanup,
  paths: HaproxyPaths,
  services: readonly HaproxyServiceConfig[],
  logPort: number,
): Promise<HaproxyProcess> {
  const config = renderHaproxyConfig({ services, paths, logPort });
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

/** A TCP receiver on 127.0.0.1 for HAProxy's log ring, collecting every line (newline kept). */
export async function logListener(t: Cleanup): Promise<{ port: number; lines: string[] }> {
  const lines: string[] = [];
  const connections = new Set<Socket>();
  const server = createNetServer((socket) => {
    connections.add(socket);
    let pending = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      pending += chunk;
      for (let newline = pending.indexOf("\n"); newline !== -1; newline = pending.indexOf("\n")) {
        lines.push(pending.slice(0, newline + 1));
        pending = pending.slice(newline + 1);
      }
    });
    // HAProxy's old worker cuts its ring connection at a reload.
    socket.on("error", () => {});
    socket.on("close", () => connections.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as { port: number }).port, lines };
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
