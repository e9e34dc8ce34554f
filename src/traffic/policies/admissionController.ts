import type { Admission, Criticality, Permit, Rejection } from "../contracts.ts";
import { type Linked, LinkedQueue } from "./linkedQueue.ts";
import { monotonicNow, requireNumber } from "./options.ts";

/** What a finished request reports through its permit. */
export interface ReleaseOutcome {
  latencyMs: number;
  /** The request failed in a way that says nothing about latency (timeout, reset, connect error). */
  dropped: boolean;
}

/** Scheduling of queue deadlines; `set` returns a handle for `clear`. */
export interface QueueTimers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: QueueTimers = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface AdmissionControllerOptions {
  /**
   * The concurrency limit now. Called on every acquire and release (and once per admission from
   * the queue): keep it cheap. NaN or a value ≤ 0 admits nothing (requests queue or are shed).
   * When it grows for another reason than a release (an instance became ready), call
   * {@link AdmissionController.limitChanged} so queued requests are admitted at once.
   */
  limit: () => number;
  /**
   * Requests that may always wait for admission (critical and default together; sheddable never
   * waits). The queue holds more while the limit can serve them before `queueTimeoutMs` (see the
   * class), up to `maxQueueSize`.
   */
  queueSize: number;
  /** The most requests the queue ever holds (default 10 × `queueSize`; at least `queueSize`). */
  maxQueueSize?: number;
  /** A request queued longer than this is rejected `queue-timeout`, in ms. */
  queueTimeoutMs: number;
  /** Monotonic clock in ms (default `performance.now()`); deadlines are on this clock. */
  now?: () => number;
  /**
   * How queue deadlines are scheduled (default: `setTimeout`). Expiry is also checked on every
   * `acquire` and release, so a simulation on an injected clock can pass timers that never fire
   * and stay deterministic.
   */
  timers?: QueueTimers;
  /**
   * Called on every first release, before queued requests are admitted, with the number of
   * requests in flight including the one released: the place to feed an {@link AdaptiveLimit}.
   */
  onRelease?: (outcome: ReleaseOutcome, inFlight: number) => void;
  /** Ceiling of `retryAfterSeconds` (default 60). */
  maxRetryAfterSeconds?: number;
}

type RejectionReason = Rejection["reason"];
type QueuedCriticality = Exclude<Criticality, "sheddable">;

export interface AdmissionStats {
  inFlight: number;
  limit: number;
  /** How many requests the queue may hold now (see the class's queue bound). */
  queueBound: number;
  queued: Record<QueuedCriticality, number>;
  /** Admitted since creation, by class (whether at once or from the queue). */
  admitted: Record<Criticality, number>;
  /** Rejected since creation, by reason and class. */
  rejected: Record<RejectionReason, Record<Criticality, number>>;
}

const REASONS: readonly RejectionReason[] = ["over-limit", "queue-full", "queue-timeout", "aborted"];
/** Weight of the newest latency in the mean used for `retryAfterSeconds`. */
const LATENCY_SMOOTHING = 0.1;

/**
 * Admission control with criticality, shared by all requests of one service.
 *
 * - Under the limit (`inFlight < limit()`), a request is admitted at once — after the queue,
 *   which always goes first.
 * - At the limit, `sheddable` is rejected at once (`over-limit`) and never queued; `critical` and
 *   `default` wait in a bounded queue, critical first, FIFO within a class.
 * - The queue is full at its bound: `queueSize`, or more while the limit can serve the queue before
 *   the timeout — floor(limit × queueTimeoutMs ÷ mean latency) — up to `maxQueueSize`. A fixed
 *   count alone turns a short stall into errors: at 4,000 requests/s a 30 ms pause fills a queue of
 *   100, while each of them could still be served well within its timeout.
 * - A full queue rejects a new `default` (`queue-full`); a new `critical` evicts the newest queued
 *   `default` instead (that one is rejected `queue-full`), or is rejected if only criticals wait.
 * - A request queued past `queueTimeoutMs` is rejected `queue-timeout`; one whose signal aborts is
 *   rejected `aborted` and leaves the queue.
 * - Releasing a permit admits from the head of the queue. Release is idempotent.
 *
 * `retryAfterSeconds` estimates how long the backlog takes to drain: (queued + 1) × mean latency ÷
 * limit, rounded up to whole seconds, within [1, maxRetryAfterSeconds].
 *
 * The promise of {@link acquire} never rejects. Queue timeouts use a single real timer armed for
 * the earliest deadline (each class is FIFO with one timeout, so deadlines are in order); expired
 * requests are also rejected whenever the controller is used, by the injected clock.
 */
export class AdmissionController implements Admission {
  private readonly limitOf: () => number;
  private readonly queueSize: number;
  private readonly maxQueueSize: number;
  private readonly queueTimeoutMs: number;
  private readonly now: () => number;
  private readonly onRelease: ((outcome: ReleaseOutcome, inFlight: number) => void) | undefined;
  private readonly maxRetryAfterSeconds: number;
  private readonly criticalQueue = new LinkedQueue<Waiter>();
  private readonly defaultQueue = new LinkedQueue<Waiter>();
  private running = 0;
  private meanLatencyMs = 0;
  private timer: unknown;
  private readonly timers: QueueTimers;
  private timerDeadline = Number.POSITIVE_INFINITY;
  private readonly admittedCounts: Record<Criticality, number> = { critical: 0, default: 0, sheddable: 0 };
  private readonly rejectedCounts = Object.fromEntries(
    REASONS.map((reason) => [reason, { critical: 0, default: 0, sheddable: 0 }]),
  ) as Record<RejectionReason, Record<Criticality, number>>;

  constructor(options: AdmissionControllerOptions) {
    const name = "AdmissionController";
    this.limitOf = options.limit;
    this.queueSize = requireNumber(name, "queueSize", options.queueSize, { min: 0, integer: true });
    this.maxQueueSize = requireNumber(name, "maxQueueSize", options.maxQueueSize ?? 10 * this.queueSize, {
      min: this.queueSize,
      integer: true,
    });
    this.queueTimeoutMs = requireNumber(name, "queueTimeoutMs", options.queueTimeoutMs, { min: 0 });
    this.now = options.now ?? monotonicNow;
    this.timers = options.timers ?? REAL_TIMERS;
    this.onRelease = options.onRelease;
    this.maxRetryAfterSeconds = requireNumber(
      name,
      "maxRetryAfterSeconds",
      options.maxRetryAfterSeconds ?? 60,
      {
        min: 1,
        integer: true,
      },
    );
  }

  /** Requests admitted and not yet released. */
  get inFlight(): number {
    return this.running;
  }

  /** Requests waiting in the queue. */
  get queued(): number {
    return this.criticalQueue.size + this.defaultQueue.size;
  }

  /**
   * Admit, queue or shed one request (see the class rules). Never rejects: a refusal resolves as
   * a {@link Rejection}. `signal` aborting while queued resolves it as `aborted`.
   */
  acquire(criticality: Criticality, signal?: AbortSignal): Promise<Permit | Rejection> {
    if (signal?.aborted) return Promise.resolve(this.rejection("aborted", criticality));
    const now = this.now();
    this.expireDue(now);
    this.drain();
    if (this.queued === 0 && this.running < this.limitOf()) {
      return Promise.resolve(this.admit(criticality));
    }
    if (criticality === "sheddable") return Promise.resolve(this.rejection("over-limit", criticality));
    if (this.queued >= this.queueBound()) {
      const victim = criticality === "critical" ? this.defaultQueue.tail : null;
      if (!victim) return Promise.resolve(this.rejection("queue-full", criticality));
      this.defaultQueue.remove(victim);
      this.settle(victim, this.rejection("queue-full", victim.criticality));
    }
    const waiter = new Waiter(this, criticality, now + this.queueTimeoutMs, signal);
    const admitted = new Promise<Permit | Rejection>((resolve) => {
      waiter.resolve = resolve;
    });
    (criticality === "critical" ? this.criticalQueue : this.defaultQueue).push(waiter);
    signal?.addEventListener("abort", waiter, { once: true });
    this.scheduleTimer();
    return admitted;
  }

  /**
   * Admit at once when {@link acquire} would (nothing queued, under the limit), without a
   * promise; null otherwise (then call {@link acquire}, which queues or sheds).
   */
  tryAcquire(criticality: Criticality): Permit | null {
    if (this.queued === 0 && this.running < this.limitOf()) return this.admit(criticality);
    return null;
  }

  /**
   * The limit may have grown without a release (an instance became ready, an adaptive limit
   * rose): admit what now fits from the queue.
   */
  limitChanged(): void {
    this.expireDue(this.now());
    this.drain();
  }

  /** A snapshot of the counters (a copy: safe to keep or serialise). */
  stats(): AdmissionStats {
    const rejected = {} as Record<RejectionReason, Record<Criticality, number>>;
    for (const reason of REASONS) rejected[reason] = { ...this.rejectedCounts[reason] };
    return {
      inFlight: this.running,
      limit: this.limitOf(),
      queueBound: this.queueBound(),
      queued: { critical: this.criticalQueue.size, default: this.defaultQueue.size },
      admitted: { ...this.admittedCounts },
      rejected,
    };
  }

  /** @internal Called once per permit, by the permit. */
  released(outcome: ReleaseOutcome): void {
    const inFlight = this.running;
    this.running--;
    if (!outcome.dropped && Number.isFinite(outcome.latencyMs)) {
      this.meanLatencyMs =
        this.meanLatencyMs === 0
          ? outcome.latencyMs
          : this.meanLatencyMs + LATENCY_SMOOTHING * (outcome.latencyMs - this.meanLatencyMs);
    }
    this.onRelease?.(outcome, inFlight);
    this.expireDue(this.now());
    this.drain();
  }

  /** @internal The signal of a queued request aborted. */
  abandoned(waiter: Waiter): void {
    if (!waiter.queued) return;
    (waiter.criticality === "critical" ? this.criticalQueue : this.defaultQueue).remove(waiter);
    this.settle(waiter, this.rejection("aborted", waiter.criticality));
    this.scheduleTimer();
  }

  private admit(criticality: Criticality): Permit {
    this.running++;
    this.admittedCounts[criticality]++;
    return new AdmissionPermit(this);
  }

  private rejection(reason: RejectionReason, criticality: Criticality): Rejection {
    this.rejectedCounts[reason][criticality]++;
    return { admitted: false, reason, retryAfterSeconds: this.retryAfterSeconds() };
  }

  /**
   * How many requests may wait now: `queueSize`, or as many as the limit serves before the queue
   * timeout at the mean latency seen so far, within `maxQueueSize`.
   */
  private queueBound(): number {
    const limit = this.limitOf();
    if (!(limit > 0) || !(this.meanLatencyMs > 0)) return this.queueSize;
    const servable = Math.floor((limit * this.queueTimeoutMs) / this.meanLatencyMs);
    return Math.min(this.maxQueueSize, Math.max(this.queueSize, servable));
  }

  private retryAfterSeconds(): number {
    const limit = this.limitOf();
    // Each of `limit` slots frees up about once per mean latency; a NaN limit counts as 1.
    const slots = Number.isNaN(limit) ? 1 : Math.max(limit, 1);
    const seconds = Math.ceil(((this.queued + 1) * this.meanLatencyMs) / slots / 1_000);
    return Math.min(this.maxRetryAfterSeconds, Math.max(seconds, 1));
  }

  /** Admit from the head of the queue (critical first) while under the limit. */
  private drain(): void {
    let moved = false;
    while (this.running < this.limitOf()) {
      const waiter = this.criticalQueue.shift() ?? this.defaultQueue.shift();
      if (!waiter) break;
      this.settle(waiter, this.admit(waiter.criticality));
      moved = true;
    }
    if (moved) this.scheduleTimer();
  }

  /** Reject the queued requests whose deadline is at or before `now`. */
  private expireDue(now: number): void {
    const expired = this.expireQueue(this.criticalQueue, now) + this.expireQueue(this.defaultQueue, now);
    if (expired > 0) this.scheduleTimer();
  }

  private expireQueue(queue: LinkedQueue<Waiter>, now: number): number {
    let expired = 0;
    for (let head = queue.head; head && head.deadline <= now; head = queue.head) {
      queue.remove(head);
      this.settle(head, this.rejection("queue-timeout", head.criticality));
      expired++;
    }
    return expired;
  }

  /**
   * Keep one timer armed for the earliest deadline. A timer already armed for an earlier time is
   * left alone (it re-arms when it fires), so admitting from the queue does not churn timers.
   */
  private scheduleTimer(): void {
    const earliest = Math.min(
      this.criticalQueue.head?.deadline ?? Number.POSITIVE_INFINITY,
      this.defaultQueue.head?.deadline ?? Number.POSITIVE_INFINITY,
    );
    if (earliest === Number.POSITIVE_INFINITY) {
      this.clearTimer();
      return;
    }
    if (this.timer !== undefined && this.timerDeadline <= earliest) return;
    this.clearTimer();
    this.timerDeadline = earliest;
    this.timer = this.timers.set(() => this.onTimer(), Math.max(0, earliest - this.now()));
  }

  private onTimer(): void {
    const deadline = this.timerDeadline;
    this.timer = undefined;
    this.timerDeadline = Number.POSITIVE_INFINITY;
    // The timer was armed for `deadline`: honour it even if the clock reads a little earlier.
    this.expireDue(Math.max(this.now(), deadline));
    this.drain();
    this.scheduleTimer();
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    this.timers.clear(this.timer);
    this.timer = undefined;
    this.timerDeadline = Number.POSITIVE_INFINITY;
  }

  private settle(waiter: Waiter, result: Permit | Rejection): void {
    waiter.signal?.removeEventListener("abort", waiter);
    waiter.resolve(result);
  }
}

const NOOP = (): void => {};

/** A queued request. It is its own abort listener (`handleEvent`), so queueing allocates no closure for it. */
class Waiter implements Linked<Waiter> {
  prev: Waiter | null = null;
  next: Waiter | null = null;
  queued = false;
  readonly owner: AdmissionController;
  readonly criticality: QueuedCriticality;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  resolve: (result: Permit | Rejection) => void = NOOP;

  constructor(
    owner: AdmissionController,
    criticality: QueuedCriticality,
    deadline: number,
    signal: AbortSignal | undefined,
  ) {
    this.owner = owner;
    this.criticality = criticality;
    this.deadline = deadline;
    this.signal = signal;
  }

  handleEvent(): void {
    this.owner.abandoned(this);
  }
}

class AdmissionPermit implements Permit {
  readonly admitted = true as const;
  private owner: AdmissionController | null;

  constructor(owner: AdmissionController) {
    this.owner = owner;
  }

  release(outcome: ReleaseOutcome): void {
    const owner = this.owner;
    if (!owner) return;
    this.owner = null;
    owner.released(outcome);
  }
}

/**
 * A service's concurrency limit from its ready instances' limits (each already capped, e.g.
 * `min(maxConcurrentPerInstance, adaptive.limit)`): their sum, ignoring negative or NaN entries.
 */
export function serviceLimit(limits: Iterable<number>): number {
  let total = 0;
  for (const limit of limits) if (limit > 0) total += limit;
  return total;
}
