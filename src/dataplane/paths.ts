/**
 * Where a fleet's data plane keeps its files: `<state dir>/dataplane/`, owner-only. The feed's
 * Unix socket lives there too unless that path is too long for a socket address (108 bytes on
 * Linux); then it goes to the temporary directory under a name derived from the state dir.
 */

import { createHash } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * sun_path is 108 bytes with the terminating NUL; the socket is first bound under its path plus
 * `.<pid>` (up to 8 more bytes), then renamed.
 */
const MAX_SOCKET_PATH = 96;

export interface DataPlanePaths {
  dir: string;
  /** The feed's Unix socket. */
  feed: string;
  /** The last snapshot applied (faults left out), for a data plane that starts without a controller. */
  snapshot: string;
  /** Who runs the data plane now: pid, start time, generation (written by the data plane). */
  process: string;
  /** The data plane's own log (JSON lines). */
  log: string;
}

/**
 * The files of data-plane worker `worker` of the fleet whose state is in `stateDir`: worker 0 in
 * `dataplane/`, the others in `dataplane/worker-N/`.
 */
export function dataPlanePaths(stateDir: string, worker = 0): DataPlanePaths {
  const root = join(resolve(stateDir), "dataplane");
  const dir = worker === 0 ? root : join(root, `worker-${worker}`);
  const inDir = join(dir, "feed.sock");
  const feed =
    Buffer.byteLength(inDir) <= MAX_SOCKET_PATH
      ? inDir
      : join(tmpdir(), `homeostat-${createHash("sha256").update(dir).digest("hex").slice(0, 16)}.sock`);
  return {
    dir,
    feed,
    snapshot: join(dir, "snapshot.json"),
    process: join(dir, "process.json"),
    log: join(dir, "dataplane.log"),
  };
}

/** Create the directory, readable by its owner only (the feed socket is its authority). */
export function ensureDataPlaneDir(paths: DataPlanePaths): void {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  chmodSync(paths.dir, 0o700);
}
