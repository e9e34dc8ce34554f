/**
 * The records the state store keeps. TypeScript names are camelCase; the SQLite columns are the
 * snake_case equivalents. Times are epoch milliseconds.
 */

/** The controller that owns a state directory (one at a time). */
export interface ControllerInfo {
  pid: number;
  /** Kernel start time of `pid` (see `src/lib/procStat.ts`); null if it could not be read. */
  startTime: string | null;
  apiPort: number;
  startedAt: number;
}

/** The last fleet file applied with `up`/`apply`. */
export interface FleetRecord {
  file: string;
  specJson: string;
  at: number;
}

/** One version of one service, as first and last seen in an applied fleet. */
export interface ReleaseRecord {
  service: string;
  version: string;
  specJson: string;
  contentHash: string;
  firstSeen: number;
  lastSeen: number;
}

export interface LastExit {
  code: number | null;
  signal: string | null;
  at: number;
}

/** One instance slot; carries the driver handle (pid, startTime, logPath) so a new controller can adopt it. */
export interface InstanceRecord {
  name: string;
  service: string;
  slot: number;
  port: number;
  /** Release version key. */
  release: string;
  zone: string;
  host: string;
  pid: number | null;
  startTime: string | null;
  logPath: string | null;
  startedAt: number | null;
  /** Bumped on every (re)start, so stale observations of an earlier process can be told apart. */
  generation: number;
  desired: "running" | "stopped";
  lastExit: LastExit | null;
  /**
   * Hash of the release's launch config as this process was started with it
   * (`src/verify/convergence.ts` `configHashOf`); null: started before it was recorded.
   */
  configHash?: string | null;
  /** Secret name → version the process was started with; null: not recorded. */
  secretVersions?: Record<string, string> | null;
}

/**
 * Restart bookkeeping for one instance slot, kept so a controller restart does not reset backoff.
 * The decision core owns its meaning (`src/decide/slotState.ts`); the store keeps it as is.
 */
export type { SlotState as SlotRecord } from "../decide/slotState.ts";

export type IncidentStatus = "open" | "closed";

export interface IncidentRecord {
  id: number;
  service: string;
  instance: string;
  /** What was seen: "exited", "liveness-failed", "startup-failed", … */
  kind: string;
  status: IncidentStatus;
  /** Why recovery was needed: "process-exited", "liveness", "crash-loop", … */
  reason: string;
  detectedAt: number;
  lastGoodAt: number | null;
  actionStartedAt: number | null;
  mitigatedAt: number | null;
  closedAt: number | null;
  /** When the stabilization window had passed while the verification gate still blocked. */
  stabilizedAt: number | null;
  /** When the verification gate passed (the incident closed then); TTS = verifiedAt - detectedAt. */
  verifiedAt: number | null;
  /** Time to detect: detectedAt - lastGoodAt. */
  ttdMs: number | null;
  /** Time to recover: mitigatedAt - detectedAt. */
  ttrMs: number | null;
  detail: string;
}

/** What `openIncident` needs; the rest starts empty and the status starts "open". */
export interface NewIncident {
  service: string;
  instance: string;
  kind: string;
  reason: string;
  detectedAt: number;
  lastGoodAt?: number | null;
  /** Time to detect, when the last good observation is known. */
  ttdMs?: number | null;
  detail?: string;
}

/** The fields `updateIncident` may change. */
export type IncidentPatch = Partial<
  Pick<
    IncidentRecord,
    | "status"
    | "reason"
    | "actionStartedAt"
    | "mitigatedAt"
    | "closedAt"
    | "stabilizedAt"
    | "verifiedAt"
    | "ttdMs"
    | "ttrMs"
    | "detail"
  >
>;

/** One step in an incident's timeline ("detected", "action", "verified", …). */
export interface TimelineEntry {
  at: number;
  phase: string;
  detail: string;
}

export interface NewEvent {
  at: number;
  type: string;
  service?: string;
  instance?: string;
  reason: string;
  message: string;
  data?: unknown;
}

/** An event with its sequence number: strictly increasing, never reused, for `events --follow`. */
export interface EventRecord extends NewEvent {
  seq: number;
}

export interface JournalIntent {
  at: number;
  action: string;
  target: string;
  reason: string;
  data?: unknown;
}

export interface JournalResult {
  at: number;
  ok: boolean;
  detail: string;
}

/** An action the controller meant to take, and what came of it (null: no result recorded yet). */
export interface JournalRecord extends JournalIntent {
  id: number;
  /** The fencing token of the controller that wrote it (absent before leases, v8). */
  token?: number;
  result: JournalResult | null;
}
