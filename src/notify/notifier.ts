/**
 * Webhook delivery. The store's listener only reads what happened and queues it: sending runs on
 * its own (fetch, one deadline per attempt, retries with exponential backoff and jitter), so a
 * slow, hung or absent receiver never holds the control loop. Each webhook has its own queue,
 * bounded: when it is full the newest notification is dropped, counted and evented, and memory
 * never grows with a receiver's outage. A notification that cannot be delivered after its
 * attempts ends in a `notification.failed` event that says why.
 */

import type { Reason } from "../decide/reasons.ts";
import type { NotificationsSpec, WebhookSpec } from "../spec/notifications.ts";
import type { StateStore, StoreChange } from "../store/index.ts";
import { bodyFor, DELIVERY_HEADER, SIGNATURE_HEADER, signature } from "./formats.ts";
import { type Notification, notificationFor } from "./notification.ts";

/** How a delivery attempt ended, for metrics. */
export type DeliveryOutcome = "delivered" | "failed" | "dropped" | "retried";

export interface NotifierOptions {
  fleet: string;
  notifications: NotificationsSpec;
  store: StateStore;
  /** Records an event (the controller's `note`): `notification.failed`, `notification.dropped`. */
  note(type: string, why: Reason, data: Record<string, unknown>): void;
  /** Counts delivery outcomes (the controller's metrics). */
  count?(webhook: string, outcome: DeliveryOutcome): void;
  /** Where secrets are read from (`secretEnv`); default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Notifications waiting per webhook, retries included. Default 1000. */
  maxQueued?: number;
  /** Attempts in flight per webhook. Default 2. */
  concurrency?: number;
  /** First retry delay; each next one doubles, up to `backoffMaxMs`. Default 1 s. */
  backoffBaseMs?: number;
  /** Default 60 s. */
  backoffMaxMs?: number;
  now?: () => number;
  random?: () => number;
}

interface Delivery {
  notification: Notification;
  /** Attempts made so far. */
  attempts: number;
}

/** Answers worth trying again: the receiver is busy or briefly unwell, not refusing the content. */
function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** One webhook's queue and sender. */
class WebhookQueue {
  readonly spec: WebhookSpec;
  readonly #owner: Notifier;
  readonly #waiting: Delivery[] = [];
  /** Deliveries waiting out a backoff, with their timers. */
  readonly #backingOff = new Map<Delivery, NodeJS.Timeout>();
  readonly #inFlight = new Set<AbortController>();
  #active = 0;
  #dropped = 0;
  #lastDropNoteAt = Number.NEGATIVE_INFINITY;

  constructor(spec: WebhookSpec, owner: Notifier) {
    this.spec = spec;
    this.#owner = owner;
  }

  get size(): number {
    return this.#waiting.length + this.#backingOff.size + this.#active;
  }

  push(notification: Notification): void {
    if (this.size >= this.#owner.maxQueued) {
      this.#dropped++;
      this.#owner.count(this.spec.name, "dropped");
      this.#noteDrops(notification);
      return;
    }
    this.#waiting.push({ notification, attempts: 0 });
    this.#next();
  }

  stop(): void {
    for (const timer of this.#backingOff.values()) clearTimeout(timer);
    this.#backingOff.clear();
    this.#waiting.length = 0;
    for (const controller of this.#inFlight) controller.abort(new Error("the controller is stopping"));
  }

  /** A drop is evented at once, then at most once a minute with the count since the last event. */
  #noteDrops(latest: Notification): void {
    const now = this.#owner.now();
    if (now - this.#lastDropNoteAt < 60_000) return;
    this.#lastDropNoteAt = now;
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#owner.later(
      "notification.dropped",
      {
        code: "notification-dropped",
        message: `webhook ${this.spec.name}: ${dropped} notification(s) dropped, latest ${latest.type}: ${this.#owner.maxQueued} are already waiting (the receiver is down or too slow)`,
      },
      { webhook: this.spec.name, dropped, notification: latest.type, notificationId: latest.id },
    );
  }

  #next(): void {
    while (!this.#owner.stopped && this.#active < this.#owner.concurrency && this.#waiting.length > 0) {
      const delivery = this.#waiting.shift()!;
      this.#active++;
      void this.#attempt(delivery).finally(() => {
        this.#active--;
        this.#next();
      });
    }
  }

  async #attempt(delivery: Delivery): Promise<void> {
    delivery.attempts++;
    const { notification } = delivery;
    let error: string;
    let retry = true;
    const secretEnv = this.spec.secretEnv;
    const secret = secretEnv === null ? null : this.#owner.env[secretEnv];
    if (secretEnv !== null && (secret === undefined || secret === "")) {
      // Never send unsigned what is meant to be signed: the receiver would have to accept forgeries.
      error = `the signing secret's environment variable ${secretEnv} is not set`;
      retry = false;
    } else {
      const body = bodyFor(this.spec.format, notification);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "homeostat-webhook",
        [DELIVERY_HEADER]: notification.id,
      };
      if (secret !== null && secret !== undefined) {
        headers[SIGNATURE_HEADER] = signature(secret, body, Math.floor(this.#owner.now() / 1000));
      }
      const controller = new AbortController();
      this.#inFlight.add(controller);
      const timer = setTimeout(
        () => controller.abort(new Error(`no answer within ${this.spec.timeoutMs} ms`)),
        this.spec.timeoutMs,
      );
      try {
        const response = await fetch(this.spec.url, {
          method: "POST",
          headers,
          body,
          signal: controller.signal,
          redirect: "manual",
        });
        await response.body?.cancel().catch(() => undefined);
        if (response.status >= 200 && response.status < 300) {
          this.#owner.count(this.spec.name, "delivered");
          return;
        }
        error = `HTTP ${response.status}`;
        retry = retryable(response.status);
      } catch (caught) {
        error = describeFetchError(caught, controller.signal);
      } finally {
        clearTimeout(timer);
        this.#inFlight.delete(controller);
      }
    }
    if (this.#owner.stopped) return;
    if (retry && delivery.attempts < this.spec.maxAttempts) {
      this.#owner.count(this.spec.name, "retried");
      const timer = setTimeout(() => {
        this.#backingOff.delete(delivery);
        this.#waiting.push(delivery);
        this.#next();
      }, this.#owner.backoffMs(delivery.attempts));
      this.#backingOff.set(delivery, timer);
      return;
    }
    this.#owner.count(this.spec.name, "failed");
    this.#owner.later(
      "notification.failed",
      {
        code: "notification-failed",
        message: `webhook ${this.spec.name}: ${notification.type} not delivered after ${delivery.attempts} attempt(s): ${error}`,
      },
      {
        webhook: this.spec.name,
        notification: notification.type,
        notificationId: notification.id,
        attempts: delivery.attempts,
        error,
        ...(notification.service === undefined ? {} : { service: notification.service }),
      },
    );
  }
}

/** The cause fetch hides in `error.cause` (ECONNREFUSED, a timeout), in words. */
function describeFetchError(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const why = signal.reason;
    return why instanceof Error ? why.message : String(why);
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code !== undefined) return `${cause.code}${cause.message ? ` (${cause.message})` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

/** Follows the store and tells each webhook what it subscribed to. */
export class Notifier {
  readonly maxQueued: number;
  readonly concurrency: number;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => number;
  readonly #options: NotifierOptions;
  #queues: WebhookQueue[];
  readonly #random: () => number;
  #unsubscribe: (() => void) | null = null;
  #stopped = false;

  constructor(options: NotifierOptions) {
    this.#options = options;
    this.maxQueued = options.maxQueued ?? 1000;
    this.concurrency = options.concurrency ?? 2;
    this.env = options.env ?? process.env;
    this.now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#queues = options.notifications.webhooks.map((spec) => new WebhookQueue(spec, this));
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Starts following the store (a no-op without webhooks). */
  start(): void {
    if (this.#queues.length === 0 || this.#unsubscribe !== null) return;
    const store = this.#options.store;
    const context = {
      fleet: this.#options.fleet,
      incident: (id: number) => store.getIncident(id),
      openIncidents: (service: string) => store.listIncidents({ status: "open", service }),
    };
    this.#unsubscribe = store.subscribe((change: StoreChange) => {
      if (change.kind !== "event" || this.#stopped) return;
      const notification = notificationFor(change.event, context);
      if (notification === null) return;
      for (const queue of this.#queues) {
        if (queue.spec.events.includes(notification.type)) queue.push(notification);
      }
    });
  }

  /**
   * Take the webhooks of a newly applied spec: an unchanged webhook keeps its queue; a changed or
   * removed one is stopped (what waits is dropped); a new one starts empty.
   */
  setNotifications(notifications: NotificationsSpec): void {
    if (this.#stopped) return;
    const kept: WebhookQueue[] = [];
    for (const spec of notifications.webhooks) {
      const same = this.#queues.find(
        (q) => q.spec.name === spec.name && JSON.stringify(q.spec) === JSON.stringify(spec),
      );
      kept.push(same ?? new WebhookQueue(spec, this));
    }
    for (const queue of this.#queues) if (!kept.includes(queue)) queue.stop();
    this.#queues = kept;
    this.start();
  }

  /** Stops following the store, drops what waits and aborts what is being sent. */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    for (const queue of this.#queues) queue.stop();
  }

  /** Notifications waiting or being sent, per webhook. */
  pending(): Record<string, number> {
    return Object.fromEntries(this.#queues.map((q) => [q.spec.name, q.size]));
  }

  /** Delay before attempt `attempts + 1`: base × 2^(attempts−1), capped, half of it random (jitter). */
  backoffMs(attempts: number): number {
    const base = this.#options.backoffBaseMs ?? 1_000;
    const max = this.#options.backoffMaxMs ?? 60_000;
    const delay = Math.min(max, base * 2 ** (attempts - 1));
    return Math.round(delay / 2 + (this.#random() * delay) / 2);
  }

  count(webhook: string, outcome: DeliveryOutcome): void {
    this.#options.count?.(webhook, outcome);
  }

  /** Records an event outside the store's listeners (they must not write to the store). */
  later(type: string, why: Reason, data: Record<string, unknown>): void {
    setImmediate(() => {
      if (!this.#stopped) this.#options.note(type, why, data);
    });
  }
}
