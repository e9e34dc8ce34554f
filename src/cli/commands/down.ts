import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopOrphanedHaproxy } from "../../dataplane/haproxy/haproxyProcess.ts";
import { stopOrphanedDataPlane } from "../../dataplane/processRecord.ts";
import { LocalProcessDriver } from "../../drivers/local/localProcessDriver.ts";
import { HomeostatError } from "../../errors.ts";
import { isProcessAlive } from "../../lib/procStat.ts";
import { stopOrphanedStoreMembers } from "../../stateful/redis/storeManager.ts";
import { STOPPED_HOLDER, StateStore } from "../../store/index.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, positiveIntOption, stateDirOption, stringOption } from "../args.ts";
import type { CliIo, Command } from "../command.ts";

export const downCommand: Command = {
  name: "down",
  summary:
    "stop the fleet and its controller, or (--keep-fleet) the controller alone; also cleans up after a crashed controller",
  usage: `homeostat down [FILE] [--keep-fleet] [--state-dir DIR] [--store URL] [--api-port N] [--timeout SECONDS]

Asks the running controller to stop every instance gracefully and exit, and waits until it has.
With --keep-fleet, the controller stops alone: instances and the data plane keep running (and
serving) for the next \`homeostat up\` to adopt — how Homeostat itself is upgraded
(docs/operations.md#controller-lifecycle). SIGQUIT to the controller does the same.
If no controller answers (it was killed), give the fleet FILE or --state-dir: down then stops
the instances recorded in that state directory itself, checking each pid's start time so that a
recycled pid is never signalled.

Options:
  --keep-fleet       stop the controller only; leave instances and the data plane running
  --state-dir DIR    state directory (default: .homeostat/<FILE's name>/ beside FILE)
  --store URL        the PostgreSQL store the controllers used (default $HOMEOSTAT_STORE): with no
                     controller answering, down reads the instances from it, and marks the fleet
                     stopped so that a controller still waiting to take over does not restart it
  --api-port N       controller API port (default 7070, or $HOMEOSTAT_API_PORT)
  --timeout SECONDS  how long to wait for the controller to finish (default 120)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "down",
      argv,
      {
        "state-dir": { type: "string" },
        timeout: { type: "string" },
        "keep-fleet": { type: "boolean" },
        store: { type: "string" },
        ...apiPortOption,
      },
      1,
    );
    const client = apiClient(apiPort(values));
    const timeoutMs = positiveIntOption(values, "timeout", 120) * 1000;
    const keepFleet = values["keep-fleet"] === true;
    if (await client.alive()) {
      await client.post("/v1/shutdown", keepFleet ? { keepFleet: true } : {});
      io.out(
        keepFleet
          ? "homeostat: the controller is stopping; instances and the data plane keep running…"
          : "homeostat: the controller is stopping every instance…",
      );
      const deadline = Date.now() + timeoutMs;
      while (await client.alive()) {
        if (Date.now() > deadline) {
          throw new HomeostatError(
            "HS_INTERNAL",
            `the controller at ${client.base} did not stop within ${timeoutMs / 1000}s`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      io.out(
        keepFleet
          ? "homeostat: the controller stopped; the fleet keeps running (the next `homeostat up` adopts it)"
          : "homeostat: stopped",
      );
      return 0;
    }
    if (keepFleet) {
      // Nothing to stop: without a controller, the fleet already runs on its own.
      throw new HomeostatError(
        "HS_CONTROLLER_UNREACHABLE",
        `no controller answers on ${client.base}: nothing to stop (the instances it left keep running; \`homeostat up\` adopts them)`,
      );
    }
    const stateDir = stateDirOption(values, positionals[0]);
    if (stateDir === undefined) {
      throw new HomeostatError(
        "HS_CONTROLLER_UNREACHABLE",
        `no controller answers on ${client.base}. If it crashed, run \`homeostat down FLEET.yaml\` (or --state-dir DIR) to stop the instances it left.`,
      );
    }
    const store = stringOption(values, "store") ?? (process.env.HOMEOSTAT_STORE || undefined);
    return await cleanUpAfterCrash(stateDir, store, io);
  },
};

async function cleanUpAfterCrash(stateDir: string, storeUrl: string | undefined, io: CliIo): Promise<number> {
  if (storeUrl === undefined && !existsSync(join(stateDir, "state.db"))) {
    io.out(`homeostat: no state in ${stateDir}; nothing to stop`);
    return 0;
  }
  const store = StateStore.open(stateDir, storeUrl);
  try {
    const lease = store.leadership.current();
    if (store.dialect === "postgres" && lease !== null && lease.holder !== STOPPED_HOLDER) {
      if (lease.expiresAt > store.leadership.clockMs()) {
        throw new HomeostatError(
          "HS_STATE_LOCKED",
          `controller ${lease.holder} leads this store (fencing token ${lease.token}${lease.apiUrl ? `, API ${lease.apiUrl}` : ""}); run \`homeostat down\` against its API port`,
        );
      }
      // Before anything stops: a controller still waiting must not take over and start it again.
      store.leadership.markStopped(lease.token);
    }
    const owner = store.controllerInfo();
    if (owner !== null && isProcessAlive(owner.pid, owner.startTime ?? null)) {
      throw new HomeostatError(
        "HS_STATE_LOCKED",
        `controller pid ${owner.pid} still owns ${stateDir} (API port ${owner.apiPort}); run \`homeostat down --api-port ${owner.apiPort}\``,
      );
    }
    // Traffic first: the data plane drains before the instances behind it go.
    const dataPlanePids = await stopOrphanedDataPlane(stateDir, 15_000);
    if (dataPlanePids.length > 0)
      io.out(`homeostat: stopped the data plane (pid ${dataPlanePids.join(", ")})`);
    // A data plane stops its HAProxy; one that died left it serving on its own.
    const haproxyPid = await stopOrphanedHaproxy(stateDir, 10_000);
    if (haproxyPid !== null) io.out(`homeostat: stopped HAProxy (pid ${haproxyPid})`);
    const scratch = mkdtempSync(join(tmpdir(), "homeostat-down-"));
    const driver = new LocalProcessDriver({ logDir: scratch });
    let stopped = 0;
    try {
      for (const record of store.listInstances()) {
        if (record.pid !== null && record.startTime !== null) {
          const outcome = await driver.adopt(record.name, {
            pid: record.pid,
            startTime: record.startTime,
            logPath: record.logPath ?? "",
          });
          if (outcome === "adopted") {
            await driver.stop(record.name, 5000);
            io.out(`homeostat: stopped ${record.name} (pid ${record.pid})`);
            stopped++;
          }
        }
        store.deleteInstance(record.name);
      }
      // Replicated stores' members (docs/redis.md) are recorded beside, not in the instances table.
      for (const member of await stopOrphanedStoreMembers(stateDir, driver)) {
        io.out(`homeostat: stopped store member ${member}`);
        stopped++;
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    io.out(`homeostat: no controller was running; stopped ${stopped} instance(s) it left behind`);
    return 0;
  } finally {
    store.close();
  }
}
