/**
 * Bring a controller up for a fleet: state store, ownership lock, API listener, driver and loop,
 * in an order that starts no instance unless everything before it succeeded.
 */

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { LocalProcessDriver } from "../drivers/local/localProcessDriver.ts";
import { HomeostatError } from "../errors.ts";
import { buildApi } from "../server/api.ts";
import { buildStatus, type StatusDocument } from "../server/statusView.ts";
import type { FleetSpec } from "../spec/model.ts";
import { type EventRecord, StateStore } from "../store/index.ts";
import { Controller } from "./controller.ts";

export interface RunOptions {
  fleet: FleetSpec;
  stateDir: string;
  apiPort: number;
  onEvent?: (event: EventRecord) => void;
  /** Called once the API listens, before any instance is adopted or started. */
  onListening?: () => void;
  /** Called once the controller has shut down on request (API `POST /v1/shutdown`). */
  onShutdownRequested?: () => void;
}

export interface RunningController {
  controller: Controller;
  store: StateStore;
  api: FastifyInstance;
  status(): StatusDocument;
  /** Stop every instance, the API and the store. Idempotent. */
  shutdown(): Promise<void>;
}

export async function runController(options: RunOptions): Promise<RunningController> {
  const store = StateStore.open(options.stateDir);
  const startedAt = Date.now();
  try {
    store.acquireControllerLock({ pid: process.pid, apiPort: options.apiPort, startedAt });
  } catch (error) {
    store.close();
    throw error;
  }
  const logDir = join(options.stateDir, "logs");
  mkdirSync(logDir, { recursive: true });
  // Structured log of everything the controller does, for machines (the console gets text).
  // Synchronous writes: a SIGKILLed controller must not lose the lines before its death.
  const logger = pino(
    { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: join(options.stateDir, "controller.log"), sync: true, mkdir: true }),
  );
  logger.info(
    { fleet: options.fleet.name, file: options.fleet.file, apiPort: options.apiPort },
    "controller starting",
  );
  const driver = new LocalProcessDriver({ logDir });
  const controller = new Controller({
    fleet: options.fleet,
    store,
    driver,
    events: {
      onEvent: (e) => {
        logger.info({ event: e }, `${e.type} ${e.instance ?? e.service ?? ""} [${e.reason}] ${e.message}`);
        options.onEvent?.(e);
      },
    },
  });

  let shuttingDown: Promise<void> | null = null;
  const status = (): StatusDocument => {
    const view = controller.view();
    const pids = new Map(store.listInstances().map((r) => [r.name, r.pid]));
    return buildStatus({
      fleet: options.fleet,
      instances: view.instances,
      pids,
      slots: view.slots,
      busy: view.busy,
      openIncidents: store.listIncidents({ status: "open" }),
      controller: {
        pid: process.pid,
        startedAt,
        apiPort: options.apiPort,
        stateDir: options.stateDir,
        now: Date.now(),
      },
    });
  };
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      await controller.shutdown();
      await api.close();
      logger.info("controller stopped");
      store.releaseControllerLock(process.pid);
      store.close();
    })();
    return shuttingDown;
  };
  const api = buildApi({
    store,
    status,
    shutdown: async () => {
      await shutdown();
      options.onShutdownRequested?.();
    },
  });
  try {
    await api.listen({ host: "127.0.0.1", port: options.apiPort });
  } catch (error) {
    store.releaseControllerLock(process.pid);
    store.close();
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE") {
      throw new HomeostatError(
        "HS_USAGE",
        `API port 127.0.0.1:${options.apiPort} is already in use (another controller?). Stop it with \`homeostat down\`, or pick another port with --api-port.`,
      );
    }
    throw error;
  }
  options.onListening?.();
  await controller.start();
  return { controller, store, api, status, shutdown };
}
