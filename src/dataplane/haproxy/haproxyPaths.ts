/**
 * Where the fleet's managed HAProxy keeps its files: `<state dir>/dataplane/haproxy/`, owner-only.
 * Its two Unix sockets live there too unless a path is too long for a socket address; then that
 * socket goes to the temporary directory under a name derived from the directory (as the feed
 * socket does, see ../paths.ts).
 */

import { createHash } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** sun_path is 108 bytes with its NUL; HAProxy binds under `<path>.<pid>.tmp` first, then renames. */
const MAX_SOCKET_PATH = 96;

export interface HaproxyPaths {
  dir: string;
  /** The fleet's rendered configuration. */
  config: string;
  /** The master CLI (`show proc`, `reload`), mode 600. */
  masterSocket: string;
  /** The workers' stats socket: Runtime API at `level admin`, mode 600, `expose-fd listeners`. */
  adminSocket: string;
  /** The master's pid, written by HAProxy (`-p`). */
  pidFile: string;
  /** Where the servers' runtime state is dumped before a reload, for the new worker to load. */
  serverState: string;
  /** HAProxy's own stdout and stderr (start-up errors and warnings). */
  output: string;
  mapsDir: string;
  /** The failover shedding map of `service`: `<criticality> <shed share in 1/10000ths>` lines. */
  shedMap(service: string): string;
  /** The log sampling map of `service`: `sample <share of answered requests logged, in 1/10000ths>`. */
  logMap(service: string): string;
}

function socketPath(dir: string, name: string): string {
  const inDir = join(dir, name);
  if (Buffer.byteLength(inDir) <= MAX_SOCKET_PATH) return inDir;
  const hash = createHash("sha256").update(dir).digest("hex").slice(0, 16);
  return join(tmpdir(), `homeostat-${hash}-${name}`);
}

/** The managed HAProxy's files for the fleet whose state is in `stateDir`. */
export function haproxyPaths(stateDir: string): HaproxyPaths {
  const dir = join(resolve(stateDir), "dataplane", "haproxy");
  const mapsDir = join(dir, "maps");
  return {
    dir,
    config: join(dir, "haproxy.cfg"),
    masterSocket: socketPath(dir, "master.sock"),
    adminSocket: socketPath(dir, "admin.sock"),
    pidFile: join(dir, "haproxy.pid"),
    serverState: join(dir, "server-state"),
    output: join(dir, "haproxy.out"),
    mapsDir,
    shedMap: (service) => join(mapsDir, `shed-${service}.map`),
    logMap: (service) => join(mapsDir, `log-${service}.map`),
  };
}

/** Create the directory and its maps directory, readable by their owner only (the admin socket is authority). */
export function ensureHaproxyDir(paths: HaproxyPaths): void {
  for (const dir of [paths.dir, paths.mapsDir]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
}
