/**
 * Entry point of the data-plane process, started (detached, in a process group of its own) by the
 * controller: `node src/dataplane/main.ts --state-dir DIR [--inherit JSON]`. It outlives the
 * controller; SIGTERM or a `stop` message from the controller makes it drain and exit.
 */

import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DataPlaneProcess, type Inheritance } from "./dataPlaneProcess.ts";
import { dataPlanePaths, ensureDataPlaneDir } from "./paths.ts";

const { values } = parseArgs({
  options: {
    "state-dir": { type: "string" },
    inherit: { type: "string" },
    worker: { type: "string", default: "0" },
    "reuse-port": { type: "boolean", default: false },
  },
  strict: true,
});
const stateDir = values["state-dir"];
if (stateDir === undefined) {
  process.stderr.write("dataplane: --state-dir is required\n");
  process.exit(2);
}
const worker = Number(values.worker);
if (!Number.isInteger(worker) || worker < 0) {
  process.stderr.write(`dataplane: --worker must be a whole number, not ${values.worker}\n`);
  process.exit(2);
}
const paths = dataPlanePaths(stateDir, worker);
ensureDataPlaneDir(paths);
// Synchronous appends: a SIGKILLed data plane keeps every line written before its death.
const log = (entry: Record<string, unknown>): void => {
  appendFileSync(
    paths.log,
    `${JSON.stringify({ time: new Date().toISOString(), pid: process.pid, ...entry })}\n`,
  );
};

let inheritance: Inheritance | undefined;
if (values.inherit !== undefined) {
  const raw = JSON.parse(values.inherit) as {
    feedFd: number;
    readyFd: number;
    generation: number;
    listeners: [number, number][];
  };
  inheritance = { ...raw, listeners: new Map(raw.listeners) };
}

const dataPlane = new DataPlaneProcess({
  stateDir,
  worker,
  reusePort: values["reuse-port"] === true,
  log,
  ...(inheritance ? { inheritance } : {}),
});
process.on("SIGTERM", () => void dataPlane.stop());
process.on("SIGINT", () => void dataPlane.stop());
// A proxy bug must not take every service port down with it: log it and keep serving.
process.on("uncaughtException", (error) =>
  log({ msg: "uncaught exception", error: String(error?.stack ?? error) }),
);
process.on("unhandledRejection", (error) => log({ msg: "unhandled rejection", error: String(error) }));

try {
  await dataPlane.start();
  log({
    msg: "serving",
    worker,
    generation: inheritance?.generation ?? 0,
    inherited: inheritance !== undefined,
  });
} catch (error) {
  log({ msg: "start failed", error: String((error as Error)?.message ?? error) });
  process.stderr.write(`dataplane: ${(error as Error)?.message ?? error}\n`);
  process.exit(1);
}
await dataPlane.stopped;
log({ msg: "stopped" });
process.exit(0);
