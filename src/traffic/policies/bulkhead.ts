import { AdmissionController } from "./admissionController.ts";
import { monotonicNow, requireNumber } from "./options.ts";

export interface BulkheadOptions {
  /** Calls that may run at once. */
  maxConcurrent: number;
  /** Calls that may wait for a slot (FIFO); beyond that they are rejected at once. */
  maxQueue: number;
  /** A call that waited this long for a slot is rejected, in ms. */
  queueTimeoutMs: number;
  /** Monotonic clock in ms (default `performance.now()`). */
  now?: () => number;
}

/** The bulkhead did not run the call. */
export class BulkheadRejectedError extends Error {
  readonly reason: "queue-full" | "queue-timeout" | "aborted";

  constructor(reason: BulkheadRejectedError["reason"], options?: { cause?: unknown }) {
    super(`bulkhead rejected the call: ${reason}`, options);
    this.name = "BulkheadRejectedError";
    this.reason = reason;
  }
}

/**
 * A bulkhead: at most `maxConcurrent` calls run at once, up to `maxQueue` more wait in FIFO order
 * for at most `queueTimeoutMs`. It isolates one dependency's slowness from the rest of the process.
 * Built on {@link AdmissionController} with a single class of request.
 */
export class Bulkhead {
  private readonly admission: AdmissionController;
  private readonly now: () => number;

  constructor(options: BulkheadOptions) {
    const maxConcurrent = requireNumber("Bulkhead", "maxConcurrent", options.maxConcurrent, {
      min: 1,
      integer: true,
    });
    this.now = options.now ?? monotonicNow;
    this.admission = new AdmissionController({
      limit: () => maxConcurrent,
      queueSize: options.maxQueue,
      queueTimeoutMs: options.queueTimeoutMs,
      now: this.now,
    });
  }

  /** Calls running now. */
  get executing(): number {
    return this.admission.inFlight;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.admission.queued;
  }

  /**
   * Run `fn` when a slot is free. Rejects with {@link BulkheadRejectedError} if the queue is full,
   * the wait times out, or `signal` aborts while waiting (the abort reason is the error's cause);
   * otherwise settles like `fn`.
   */
  async execute<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const ticket = await this.admission.acquire("default", signal);
    if (!ticket.admitted) {
      const reason = ticket.reason === "over-limit" ? "queue-full" : ticket.reason;
      throw new BulkheadRejectedError(reason, reason === "aborted" ? { cause: signal?.reason } : undefined);
    }
    const started = this.now();
    let dropped = true;
    try {
      const value = await fn();
      dropped = false;
      return value;
    } finally {
      ticket.release({ latencyMs: this.now() - started, dropped });
    }
  }
}
