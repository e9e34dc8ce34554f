/**
 * Injected faults: rules that make attempts to matching endpoints misbehave as if the upstream
 * did, so they exercise outlier detection, retries and shedding exactly like real failures.
 * Off by default; changed only through the controller's API, and cleared when it stops.
 */

import { HomeostatError } from "../errors.ts";
import type { Endpoint } from "./contracts.ts";

/** What a matching attempt suffers. `rate` (0..1, default 1) is the share of attempts affected. */
export type Fault =
  /** Delay before the attempt is forwarded. */
  | { kind: "latency"; ms: number }
  /** The attempt yields `status` without contacting the upstream. */
  | { kind: "error"; status: number; rate?: number }
  /** The attempt fails as a connection reset. */
  | { kind: "reset"; rate?: number }
  /** The attempt hangs until its per-try timeout. */
  | { kind: "blackhole" };

/** Which endpoints a rule applies to: every field given must match; none given matches all. */
export interface FaultTarget {
  service?: string;
  instance?: string;
  zone?: string;
}

export interface FaultRuleInput extends FaultTarget {
  fault: Fault;
}

export interface FaultRule extends FaultRuleInput {
  id: string;
  /** Epoch ms. */
  createdAt: number;
}

const NO_RULES: readonly FaultRule[] = Object.freeze([]);
/** One minute: enough to demonstrate anything, short enough that a forgotten rule does not wedge a client forever. */
const MAX_LATENCY_MS = 60_000;

export class FaultRegistry {
  private rules: FaultRule[] = [];
  private nextId = 1;
  private readonly now: () => number;
  private readonly onChange: () => void;

  /** `onChange` runs after every change (the controller pushes the rules to the data plane then). */
  constructor(options: { now?: () => number; onChange?: () => void } = {}) {
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange ?? (() => {});
  }

  /** Add a rule (validated); it applies from the next attempt on. */
  add(input: FaultRuleInput): FaultRule {
    const fault = checkFault(input.fault);
    const rule: FaultRule = { id: `fault-${this.nextId++}`, createdAt: this.now(), fault };
    if (input.service !== undefined) rule.service = input.service;
    if (input.instance !== undefined) rule.instance = input.instance;
    if (input.zone !== undefined) rule.zone = input.zone;
    // Copy on write: `match` callers may hold the previous array while we change it.
    this.rules = [...this.rules, rule];
    this.onChange();
    return rule;
  }

  /** Remove one rule; false when there was no such rule. */
  remove(id: string): boolean {
    const kept = this.rules.filter((rule) => rule.id !== id);
    const removed = kept.length !== this.rules.length;
    this.rules = kept;
    if (removed) this.onChange();
    return removed;
  }

  clear(): void {
    const had = this.rules.length > 0;
    this.rules = [];
    if (had) this.onChange();
  }

  /**
   * Serve exactly `rules` (already validated where they were added): how the data-plane process
   * takes the controller's rules from a snapshot.
   */
  replace(rules: readonly FaultRule[]): void {
    this.rules = rules.map((rule) => ({ ...rule, fault: checkFault(rule.fault) }));
    this.onChange();
  }

  /** True when no rule is in force (cheaper than `list()`). */
  isEmpty(): boolean {
    return this.rules.length === 0;
  }

  list(): FaultRule[] {
    return this.rules.map((rule) => ({ ...rule, fault: { ...rule.fault } }));
  }

  /** The rules that apply to an attempt against `endpoint`, oldest first. */
  match(endpoint: Endpoint): readonly FaultRule[] {
    // The hot path: with no faults (the normal case) this costs one length check.
    if (this.rules.length === 0) return NO_RULES;
    return this.rules.filter(
      (rule) =>
        (rule.service === undefined || rule.service === endpoint.service) &&
        (rule.instance === undefined || rule.instance === endpoint.instance) &&
        (rule.zone === undefined || rule.zone === endpoint.zone),
    );
  }
}

function checkFault(fault: Fault): Fault {
  switch (fault.kind) {
    case "latency":
      if (!Number.isInteger(fault.ms) || fault.ms < 0 || fault.ms > MAX_LATENCY_MS) {
        throw invalid(`latency fault: ms must be whole milliseconds from 0 to ${MAX_LATENCY_MS}`, fault);
      }
      return { kind: "latency", ms: fault.ms };
    case "error":
      if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) {
        throw invalid("error fault: status must be an HTTP error status from 400 to 599", fault);
      }
      return { kind: "error", status: fault.status, rate: checkRate(fault.rate, fault) };
    case "reset":
      return { kind: "reset", rate: checkRate(fault.rate, fault) };
    case "blackhole":
      return { kind: "blackhole" };
    default:
      throw invalid("unknown fault kind (known: latency, error, reset, blackhole)", fault);
  }
}

function checkRate(rate: number | undefined, fault: Fault): number {
  if (rate === undefined) return 1;
  if (typeof rate !== "number" || !(rate > 0 && rate <= 1)) {
    throw invalid(`${fault.kind} fault: rate must be a number in (0, 1]`, fault);
  }
  return rate;
}

function invalid(message: string, fault: unknown): HomeostatError {
  return new HomeostatError("HS_BAD_REQUEST", message, { details: { fault } });
}
