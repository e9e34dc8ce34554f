/**
 * Strays: the instance processes of a log directory found from /proc alone (each leads its group
 * and writes to `<logDir>/<instance>.log`), as a controller that never recorded them must find
 * them — and nothing else: not what the instance forked, not a process of another log directory.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { LocalProcessDriver } from "../../src/drivers/local/localProcessDriver.ts";
import { killProcessGroup } from "../../src/drivers/local/processGroup.ts";
import { findStrays } from "../../src/drivers/local/strays.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { testLaunch } from "./fixtures/launch.ts";

const workDir = mkdtempSync(join(tmpdir(), "homeostat-strays-"));
const groups = new Set<number>();
after(() => {
  for (const pgid of groups) {
    try {
      killProcessGroup(pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(workDir, { recursive: true, force: true });
});

test("a new driver finds the instances an earlier one started, by their log, leaders only", async () => {
  const logDir = join(workDir, "logs");
  const earlier = new LocalProcessDriver({ logDir });
  // A shell that forks a child: the child shares the log, but only the leader is the instance.
  const handle = await earlier.start(
    testLaunch({ instance: "web-0", command: "sh", args: ["-c", "sleep 60 & wait"], cwd: workDir }),
  );
  groups.add(handle.pid);
  const other = await new LocalProcessDriver({ logDir: join(workDir, "other-logs") }).start(
    testLaunch({ instance: "web-0", command: "sleep", args: ["60"], cwd: workDir }),
  );
  groups.add(other.pid);

  const later = new LocalProcessDriver({ logDir });
  const found = await waitFor(() => {
    const strays = later.strays();
    return strays.length === 1 ? strays : null;
  });
  assert.deepEqual(found, [{ instance: "web-0", handle }]);

  killProcessGroup(handle.pid, "SIGKILL");
  await waitFor(() => findStrays(logDir).length === 0, { what: "the stray gone once killed" });
});
