/**
 * Deadlines of one fixed duration (a request timeout, a per-try timeout), kept in arming order in
 * an intrusive list with a single real timer for the earliest. Every request arms and disarms such
 * deadlines and almost none expires: a `setTimeout` + `clearTimeout` pair per deadline (a Timeout
 * object, Node's timer list bookkeeping) costs more than linking and unlinking a node, and one
 * timer per list is re-armed only when it fires.
 */

/** Something with a deadline: the list links it through these fields (no allocation per deadline). */
export interface DeadlineEntry {
  /** When the deadline passes, on the list's clock; meaningful while listed. */
  deadlineAt: number;
  deadlinePrev: DeadlineEntry | null;
  deadlineNext: DeadlineEntry | null;
  /** The list it is on, or null. */
  deadlineList: DeadlineList | null;
  /** Called once when the deadline passes (the entry is off the list by then). */
  onDeadline(): void;
}

export interface DeadlineListOptions {
  /** Monotonic ms (default `performance.now()`). */
  now?: () => number;
}

/** Deadlines that are all `durationMs` after they were armed, so the list stays sorted by appending. */
export class DeadlineList {
  readonly durationMs: number;
  private readonly now: () => number;
  private head: DeadlineEntry | null = null;
  private tail: DeadlineEntry | null = null;
  private timer: NodeJS.Timeout | null = null;
  private size = 0;

  constructor(durationMs: number, options: DeadlineListOptions = {}) {
    this.durationMs = durationMs;
    this.now = options.now ?? (() => performance.now());
  }

  /** Entries armed now. */
  get length(): number {
    return this.size;
  }

  /** Arm `entry`'s deadline `durationMs` from now (re-arms it if it was armed). */
  arm(entry: DeadlineEntry): void {
    if (entry.deadlineList !== null) entry.deadlineList.disarm(entry);
    entry.deadlineAt = this.now() + this.durationMs;
    entry.deadlineList = this;
    entry.deadlinePrev = this.tail;
    entry.deadlineNext = null;
    if (this.tail === null) this.head = entry;
    else this.tail.deadlineNext = entry;
    this.tail = entry;
    this.size++;
    // Appending never moves the head earlier: a timer armed for the head still fires first.
    if (this.timer === null) this.schedule();
  }

  /** Take `entry` off the list (no-op when it is not on it). The timer is left to fire and re-arm. */
  disarm(entry: DeadlineEntry): void {
    if (entry.deadlineList !== this) return;
    const { deadlinePrev: prev, deadlineNext: next } = entry;
    if (prev === null) this.head = next;
    else prev.deadlineNext = next;
    if (next === null) this.tail = prev;
    else next.deadlinePrev = prev;
    entry.deadlinePrev = null;
    entry.deadlineNext = null;
    entry.deadlineList = null;
    this.size--;
  }

  /** Disarm everything and stop the timer (nothing fires afterwards). */
  clear(): void {
    while (this.head !== null) this.disarm(this.head);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    const head = this.head;
    if (head === null) return;
    this.timer = setTimeout(this.expire, Math.max(1, head.deadlineAt - this.now()));
    // A pending deadline must not keep the process alive on its own: what it guards does.
    this.timer.unref();
  }

  private readonly expire = (): void => {
    this.timer = null;
    const now = this.now();
    // Node's timers run on a coarser clock and may come a fraction of a millisecond early: a head
    // not yet due is re-armed for what is left, so a deadline never passes early.
    for (let head = this.head; head !== null && head.deadlineAt <= now; head = this.head) {
      this.disarm(head);
      head.onDeadline();
    }
    if (this.timer === null) this.schedule();
  };
}

/** One list per duration, so that every list stays sorted by appending. */
export class Deadlines {
  private readonly lists = new Map<number, DeadlineList>();
  private readonly options: DeadlineListOptions;

  constructor(options: DeadlineListOptions = {}) {
    this.options = options;
  }

  /** Arm `entry` `durationMs` from now. */
  arm(entry: DeadlineEntry, durationMs: number): void {
    let list = this.lists.get(durationMs);
    if (list === undefined) {
      list = new DeadlineList(durationMs, this.options);
      this.lists.set(durationMs, list);
    }
    list.arm(entry);
  }

  /** Disarm `entry` wherever it is armed. */
  static disarm(entry: DeadlineEntry): void {
    entry.deadlineList?.disarm(entry);
  }

  /** Disarm every entry of every list. */
  clear(): void {
    for (const list of this.lists.values()) list.clear();
    this.lists.clear();
  }
}
