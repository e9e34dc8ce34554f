/**
 * The proxy bench's stand-in for the controller: it attaches to a data-plane process over the
 * config feed (src/dataplane/feedProtocol.ts), pushes one snapshot, waits for its acknowledgement,
 * and then reads every report until it is closed, so the data plane does its reporting work
 * (listener state and decision windows every 250 ms) during the measured runs, as it does under a
 * real controller. The reports are parsed against the protocol's schema, as the controller does.
 */

import type { Socket } from "node:net";
import {
  type ControllerMessage,
  type DataPlaneMessage,
  dataPlaneMessageSchema,
  FEED_PROTOCOL_VERSION,
  type Snapshot,
} from "../../src/dataplane/feedProtocol.ts";
import { LineChannel } from "../../src/dataplane/lineChannel.ts";
import { connectUnix } from "../../src/lib/sockets.ts";
import { ReportTally } from "./benchSnapshot.ts";

const ANSWER_TIMEOUT_MS = 10_000;

export class FeedController {
  readonly startedAt = Date.now();
  readonly reports = new ReportTally();
  readonly #channel: LineChannel<DataPlaneMessage, ControllerMessage>;
  readonly #waiters: ((message: DataPlaneMessage) => void)[] = [];
  #closedWhy: string | null = null;
  #closing = false;

  private constructor(socket: Socket) {
    this.#channel = new LineChannel<DataPlaneMessage, ControllerMessage>(
      socket,
      dataPlaneMessageSchema,
      (message) => this.#onMessage(message),
    );
    this.#channel.onClose((why) => {
      this.#closedWhy = why;
    });
  }

  /** Connect to the feed socket at `path` and attach (waits for the data plane's `hello`). */
  static async attach(path: string): Promise<FeedController> {
    const socket = await connectUnix(path);
    const controller = new FeedController(socket);
    const hello = controller.#next((m) => m.type === "hello", "hello");
    controller.#channel.send({
      type: "attach",
      protocol: FEED_PROTOCOL_VERSION,
      controller: { pid: process.pid, startedAt: controller.startedAt },
    });
    await hello;
    return controller;
  }

  /** Push `snapshot` and wait for its acknowledgement; throws when the data plane refuses it. */
  async push(snapshot: Snapshot): Promise<void> {
    const ack = this.#next((m) => m.type === "ack" && m.version === snapshot.version, "ack");
    this.#channel.send({ type: "snapshot", snapshot });
    const answer = await ack;
    if (answer.type === "ack" && !answer.ok) {
      throw new Error(`the data plane refused snapshot v${snapshot.version}: ${answer.error ?? "?"}`);
    }
  }

  /** Throws when the feed closed: the data plane is gone or cut the bench's connection. */
  assertOpen(): void {
    if (this.#closedWhy !== null && !this.#closing) {
      throw new Error(`the data plane's feed closed during the bench: ${this.#closedWhy}`);
    }
  }

  close(): void {
    this.#closing = true;
    this.#channel.close("bench done");
  }

  #onMessage(message: DataPlaneMessage): void {
    if (message.type === "report") this.reports.note(performance.now());
    for (const waiter of [...this.#waiters]) waiter(message);
  }

  /** The next message `match` accepts; rejects after a timeout or when the feed closes. */
  #next(match: (m: DataPlaneMessage) => boolean, what: string): Promise<DataPlaneMessage> {
    return new Promise((resolve, reject) => {
      const done = (error: Error | null, message?: DataPlaneMessage): void => {
        clearTimeout(timer);
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        if (error === null) resolve(message!);
        else reject(error);
      };
      const waiter = (message: DataPlaneMessage): void => {
        if (match(message)) done(null, message);
      };
      const timer = setTimeout(
        () => done(new Error(`no ${what} from the data plane within ${ANSWER_TIMEOUT_MS / 1000}s`)),
        ANSWER_TIMEOUT_MS,
      );
      this.#waiters.push(waiter);
      this.#channel.onClose((why) => done(new Error(`the feed closed before the ${what}: ${why}`)));
    });
  }
}
