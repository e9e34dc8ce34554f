/**
 * The Redis failover bench's client, a process of its own (so that the bench's own work never
 * delays a write): an open-loop writer that makes one write every `intervalMs` through ioredis,
 * on a timer paced by due times — a write late on its schedule is sent at once, never skipped, and
 * its lateness is recorded — whether or not earlier writes were answered.
 *
 * Each write is `MULTI; SET <prefix><seq> <seq>; CONFIG GET port; TIME; EXEC`, one round trip: the
 * SET is the write; `CONFIG GET port` and `TIME`, executed in the same transaction, say which
 * redis-server applied it and when by its clock, whatever proxy sits between (ioredis through
 * Homeostat's endpoint, or straight to the node Sentinel named). That is how the bench knows which
 * server acknowledged every write.
 *
 * Driven over IPC by the bench (writerProcess.ts): `start` → `started`; `stop` → stop making
 * writes, wait up to `settleMs` for the ones in flight, write every record to `recordsFile`,
 * `stopped`.
 */

import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Redis, type RedisOptions } from "ioredis";
import type { WriteRecord } from "./analysis.ts";
import { clientOptions, type WriterConfig, type WriterMessage, type WriterReply } from "./writerProtocol.ts";

function now(): number {
  return performance.timeOrigin + performance.now();
}

function send(reply: WriterReply): void {
  process.send?.(reply);
}

const config = JSON.parse(process.env.HS_REDIS_WRITER ?? "null") as WriterConfig | null;
if (config === null) throw new Error("HS_REDIS_WRITER is not set");

const options: RedisOptions = clientOptions(config);
const client = new Redis(options);
const connectionEvents: { at: number; event: string; detail?: string }[] = [];
for (const event of ["connect", "ready", "close", "reconnecting", "end", "+node"]) {
  client.on(event, () => connectionEvents.push({ at: now(), event }));
}
client.on("error", (error: Error) =>
  connectionEvents.push({ at: now(), event: "error", detail: error.message }),
);

const records: WriteRecord[] = [];
let pending = 0;
let running = false;
let timer: NodeJS.Timeout | null = null;
let startedAt = 0;
let nextSeq = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 1 });

function write(seq: number, dueAt: number): void {
  const record: WriteRecord = {
    seq,
    dueAt,
    sentAt: now(),
    ackAt: null,
    errorAt: null,
    error: null,
    serverPort: null,
    serverTimeMs: null,
  };
  records.push(record);
  pending++;
  client
    .multi()
    .set(`${config!.keyPrefix}${seq}`, String(seq))
    .config("GET", "port")
    .time()
    .exec()
    .then(
      (replies) => {
        const at = now();
        const [set, port, time] = replies ?? [];
        if (replies === null || set === undefined || set[0] !== null || set[1] !== "OK") {
          record.errorAt = at;
          record.error = replies === null ? "EXEC returned null" : String(set?.[0] ?? set?.[1]);
          return;
        }
        record.ackAt = at;
        const portReply = port?.[1] as string[] | undefined;
        record.serverPort = portReply?.[1] === undefined ? null : Number(portReply[1]);
        const timeReply = time?.[1] as string[] | undefined;
        record.serverTimeMs =
          timeReply === undefined ? null : Number(timeReply[0]) * 1000 + Number(timeReply[1]) / 1000;
      },
      (error: Error & { previousErrors?: Error[] }) => {
        record.errorAt = now();
        const cause = error.previousErrors?.[0]?.message;
        record.error = cause === undefined ? error.message : `${error.message} (${cause})`;
      },
    )
    .finally(() => {
      pending--;
    });
}

/** Send every write that is due, then sleep until the next one is. */
function tick(): void {
  if (!running) return;
  const t = now();
  while (startedAt + nextSeq * config!.intervalMs <= t) {
    write(nextSeq, startedAt + nextSeq * config!.intervalMs);
    nextSeq++;
  }
  const wait = startedAt + nextSeq * config!.intervalMs - now();
  timer = setTimeout(tick, Math.max(0, wait));
}

async function stop(settleMs: number): Promise<void> {
  running = false;
  if (timer !== null) clearTimeout(timer);
  const stoppedAt = now();
  const deadline = performance.now() + settleMs;
  // Writes still in flight get their chance to be answered; a poll, not a sleep as synchronisation.
  while (pending > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const unresolved = pending;
  client.disconnect();
  loopDelay.disable();
  writeFileSync(
    config!.recordsFile,
    JSON.stringify({
      startedAt,
      stoppedAt,
      unresolvedAtStop: unresolved,
      eventLoopDelayMs: {
        p50: loopDelay.percentile(50) / 1e6,
        p99: loopDelay.percentile(99) / 1e6,
        max: loopDelay.max / 1e6,
      },
      connectionEvents,
      records,
    }),
  );
  send({ type: "stopped", stoppedAt, unresolved });
}

process.on("message", (message: WriterMessage) => {
  if (message.type === "start") {
    running = true;
    loopDelay.enable();
    startedAt = now();
    send({ type: "started", startedAt });
    tick();
  } else if (message.type === "stop") {
    void stop(message.settleMs);
  }
});
process.on("disconnect", () => process.exit(0));

/**
 * Before the measured writes, the same transaction a few hundred times on a key of its own: a
 * fresh process compiles its hot paths during its first writes, which would show as the
 * generator's own lateness in the first second.
 */
async function warmUp(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    await client.multi().set(`${config!.keyPrefix}warmup`, String(i)).config("GET", "port").time().exec();
  }
}

client.once("ready", () => {
  warmUp().then(
    () => send({ type: "ready" }),
    (error: Error) => {
      process.stderr.write(`warm-up failed: ${error.message}\n`);
      process.exit(1);
    },
  );
});
