import { requireNumber } from "./options.ts";

export interface AdaptiveLimitOptions {
  /** Starting limit (default 20). */
  initial?: number;
  /** The limit never goes below this (default 1). */
  min?: number;
  /** The limit never goes above this (default 200). */
  max?: number;
  /** Weight of each window's target in the new limit (default 0.2). */
  smoothing?: number;
  /** Headroom added to the target when saturated: how fast the limit probes upwards (default 4). */
  queueSize?: number;
  /** Samples the long-term RTT averages over (default 600). */
  longWindow?: number;
  /** Latency rise tolerated before the limit shrinks: short RTT up to tolerance × long RTT (default 1.5). */
  tolerance?: number;
  /** Multiplicative decrease applied for a window with drops (default 0.9). */
  decrease?: number;
  /** A window is saturated when its peak in-flight reached this share of the limit (default 0.9). */
  saturation?: number;
  /** Fewest samples in a window (default 10). */
  minWindowSamples?: number;
  /** Called with the new (integer) limit whenever it changes. */
  onChange?: (limit: number) => void;
  /**
   * The caller's own processing delay now, in ms (e.g. its event loop's lag: a proxy short of CPU
   * reads every response late). Subtracted from each RTT sample, so that the caller's lateness is
   * not taken for the service's; a sample it swallows whole says nothing about latency. Default: none.
   */
  ownLagMs?: () => number;
}

/** Samples averaged plainly before the long RTT switches to an exponential average. */
const WARMUP_SAMPLES = 10;

/**
 * A Gradient2-style adaptive concurrency limit (after Netflix concurrency-limits), made robust
 * against two of its known flaws. Feed it every completed request with {@link onSample}; read
 * {@link limit}.
 *
 * **Windows.** Samples are grouped in windows of `max(minWindowSamples, peak in-flight)` samples —
 * about one round trip of the requests in flight — and the limit `L` moves once per window, so its
 * speed does not depend on the request rate.
 *
 * **Formula**, at the end of a window, with `short` = mean RTT of the window's non-dropped samples
 * and `long` = the baseline: an exponential average over `longWindow` samples (a plain mean over
 * the first 10), fed with the window's samples except that a saturated window (peak in-flight ≥
 * saturation × limit) may lower it but never raise it:
 * - if any sample in the window was dropped: `L ← max(min, L × decrease)` (multiplicative
 *   decrease: a timeout or reset is the strongest overload signal there is);
 * - otherwise `gradient = clamp(tolerance × long / short, 0.5, 1)`,
 *   `target = L × gradient + queueSize`, capped at `L` unless the window was saturated, and
 *   `L ← clamp((1 − smoothing) × L + smoothing × target, min, max)`.
 *   As in Gradient2, when `long > 2 × short` the baseline is pulled down by 5 % so it recovers
 *   after a long overload.
 *
 * **Against the known flaws.** Dropped samples never feed their latency into either RTT average
 * (concurrency-limits#176: the near-zero latency of a fast failure made the service look faster)
 * and they shrink the limit instead of being ignored (#137: under steady timeouts the limit drifted
 * up because the surviving samples looked healthy). The limit grows only from saturated windows,
 * so an app-limited service (few requests in flight) cannot inflate it to a value it never tested.
 * And the baseline does not follow the queueing that the limit itself causes (in Gradient2 the
 * long RTT creeps up under sustained overload, the limit with it, until requests time out).
 *
 * Consequences worth knowing: under a steady stream of drops the limit goes to `min` (and climbs
 * back once they stop); a service saturated from its very first requests takes its baseline from
 * those first samples, so keep `initial` modest.
 */
export class AdaptiveLimit {
  private readonly min: number;
  private readonly max: number;
  private readonly smoothing: number;
  private readonly queueSize: number;
  private readonly longFactor: number;
  private readonly tolerance: number;
  private readonly decrease: number;
  private readonly saturation: number;
  private readonly minWindowSamples: number;
  private readonly onChange: ((limit: number) => void) | undefined;
  private readonly ownLagMs: (() => number) | undefined;
  private estimate: number;
  private current: number;
  private longRtt = 0;
  private longSamples = 0;
  private lastShortRtt = 0;
  private windowSamples = 0;
  private windowRttSum = 0;
  private windowRttCount = 0;
  private windowDrops = 0;
  private windowPeakInFlight = 0;

  constructor(options: AdaptiveLimitOptions = {}) {
    const name = "AdaptiveLimit";
    this.min = requireNumber(name, "min", options.min ?? 1, { min: 1, integer: true });
    this.max = requireNumber(name, "max", options.max ?? 200, { min: this.min, integer: true });
    this.estimate = requireNumber(name, "initial", options.initial ?? 20, { min: this.min, max: this.max });
    this.smoothing = requireNumber(name, "smoothing", options.smoothing ?? 0.2, {
      min: 0,
      max: 1,
      minExclusive: true,
    });
    this.queueSize = requireNumber(name, "queueSize", options.queueSize ?? 4, { min: 0 });
    const longWindow = requireNumber(name, "longWindow", options.longWindow ?? 600, { min: 1 });
    this.longFactor = 2 / (longWindow + 1);
    this.tolerance = requireNumber(name, "tolerance", options.tolerance ?? 1.5, { min: 1 });
    this.decrease = requireNumber(name, "decrease", options.decrease ?? 0.9, {
      min: 0,
      max: 1,
      minExclusive: true,
    });
    this.saturation = requireNumber(name, "saturation", options.saturation ?? 0.9, {
      min: 0,
      max: 1,
      minExclusive: true,
    });
    this.minWindowSamples = requireNumber(name, "minWindowSamples", options.minWindowSamples ?? 10, {
      min: 1,
      integer: true,
    });
    this.onChange = options.onChange;
    this.ownLagMs = options.ownLagMs;
    this.current = Math.floor(this.estimate);
  }

  /** The concurrency limit now: a whole number within [min, max]. */
  get limit(): number {
    return this.current;
  }

  /** The RTT averages the limit is judged on, in ms (0 before any sample). */
  get rtt(): { long: number; lastWindow: number } {
    return { long: this.longRtt, lastWindow: this.lastShortRtt };
  }

  /**
   * Report one completed request. O(1), allocation-free.
   * @param rttMs its latency (the `ownLagMs` option, when given, is subtracted from it)
   * @param inFlight requests in flight when it completed, including itself
   * @param dropped it timed out, was reset or could not connect: its latency says nothing about
   *   the service's speed (it is ignored) but the drop itself shrinks the limit
   */
  onSample(rttMs: number, inFlight: number, dropped: boolean): void {
    this.windowSamples++;
    if (inFlight > this.windowPeakInFlight) this.windowPeakInFlight = inFlight;
    if (dropped) {
      this.windowDrops++;
    } else if (rttMs >= 0 && Number.isFinite(rttMs)) {
      const lag = this.ownLagMs === undefined ? 0 : this.ownLagMs();
      // A sample no longer than the caller's own lag may be all lag: it says nothing of the service.
      if (!(lag > 0) || rttMs > lag) {
        this.windowRttSum += lag > 0 ? rttMs - lag : rttMs;
        this.windowRttCount++;
      }
    }
    if (this.windowSamples >= Math.max(this.minWindowSamples, this.windowPeakInFlight)) this.closeWindow();
  }

  /** Fold `count` samples averaging `meanMs` into the long RTT (plain mean while warming up). */
  private addLongSamples(meanMs: number, count: number): void {
    if (this.longSamples < WARMUP_SAMPLES) {
      this.longRtt = (this.longRtt * this.longSamples + meanMs * count) / (this.longSamples + count);
    } else {
      this.longRtt += (1 - (1 - this.longFactor) ** count) * (meanMs - this.longRtt);
    }
    this.longSamples += count;
  }

  private closeWindow(): void {
    const saturated = this.windowPeakInFlight >= this.saturation * this.current;
    if (this.windowRttCount > 0) {
      const short = this.windowRttSum / this.windowRttCount;
      this.lastShortRtt = short;
      // A saturated window measures the queueing our own limit causes, so it may lower the
      // baseline but never raise it: otherwise the baseline follows the queueing up and the limit
      // with it, until only timeouts stop it.
      if (this.longSamples < WARMUP_SAMPLES || !saturated || short < this.longRtt) {
        this.addLongSamples(short, this.windowRttCount);
      }
      if (this.windowDrops === 0) this.estimate = this.next(short, saturated);
    }
    if (this.windowDrops > 0) this.estimate = Math.max(this.min, this.estimate * this.decrease);
    this.windowSamples = 0;
    this.windowRttSum = 0;
    this.windowRttCount = 0;
    this.windowDrops = 0;
    this.windowPeakInFlight = 0;
    const limit = Math.floor(this.estimate);
    if (limit !== this.current) {
      this.current = limit;
      this.onChange?.(limit);
    }
  }

  private next(short: number, saturated: boolean): number {
    const estimate = this.estimate;
    if (short <= 0) return estimate; // below clock resolution: nothing to judge
    if (this.longRtt > 2 * short) this.longRtt *= 0.95;
    const gradient = Math.max(0.5, Math.min(1, (this.tolerance * this.longRtt) / short));
    const raw = estimate * gradient + this.queueSize;
    const target = saturated ? raw : Math.min(estimate, raw);
    const smoothed = (1 - this.smoothing) * estimate + this.smoothing * target;
    return Math.max(this.min, Math.min(this.max, smoothed));
  }
}
