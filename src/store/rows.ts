/**
 * Row ↔ record conversion: snake_case columns to camelCase records, SQLite integers to booleans,
 * JSON text to values. Kept apart so `stateStore.ts` reads as queries only.
 */

import type {
  ControllerInfo,
  EventRecord,
  IncidentRecord,
  IncidentStatus,
  InstanceRecord,
  JournalRecord,
  ReleaseRecord,
  SlotRecord,
  TimelineEntry,
} from "./records.ts";

/** A row as `node:sqlite` returns it. */
export type Row = Record<string, unknown>;

const text = (value: unknown): string => value as string;
const int = (value: unknown): number => value as number;
const textOrNull = (value: unknown): string | null => (value === null ? null : (value as string));
const intOrNull = (value: unknown): number | null => (value === null ? null : (value as number));

/** JSON for a TEXT column; `undefined` is stored as NULL so it reads back as absent. */
export function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

export function controllerFromRow(row: Row): ControllerInfo {
  return {
    pid: int(row.pid),
    startTime: textOrNull(row.start_time),
    apiPort: int(row.api_port),
    startedAt: int(row.started_at),
  };
}

export function releaseFromRow(row: Row): ReleaseRecord {
  return {
    service: text(row.service),
    version: text(row.version),
    specJson: text(row.spec_json),
    contentHash: text(row.content_hash),
    firstSeen: int(row.first_seen),
    lastSeen: int(row.last_seen),
  };
}

export function instanceFromRow(row: Row): InstanceRecord {
  return {
    name: text(row.name),
    service: text(row.service),
    slot: int(row.slot),
    port: int(row.port),
    release: text(row.release),
    zone: text(row.zone),
    host: text(row.host),
    pid: intOrNull(row.pid),
    startTime: textOrNull(row.start_time),
    logPath: textOrNull(row.log_path),
    startedAt: intOrNull(row.started_at),
    generation: int(row.generation),
    desired: text(row.desired) as InstanceRecord["desired"],
    lastExit:
      row.last_exit_at === null
        ? null
        : {
            code: intOrNull(row.last_exit_code),
            signal: textOrNull(row.last_exit_signal),
            at: int(row.last_exit_at),
          },
    configHash: textOrNull(row.config_hash ?? null),
    secretVersions:
      row.secret_versions === null || row.secret_versions === undefined
        ? null
        : (JSON.parse(text(row.secret_versions)) as Record<string, string>),
  };
}

export function slotFromRow(row: Row): SlotRecord {
  return {
    instance: text(row.instance),
    consecutiveFailures: int(row.consecutive_failures),
    restartTimes: JSON.parse(text(row.restart_times)) as number[],
    nextStartAt: intOrNull(row.next_start_at),
    crashLoop: int(row.crash_loop) === 1,
    updatedAt: int(row.updated_at),
  };
}

export function incidentFromRow(row: Row): IncidentRecord {
  return {
    id: int(row.id),
    service: text(row.service),
    instance: text(row.instance),
    kind: text(row.kind),
    status: text(row.status) as IncidentStatus,
    reason: text(row.reason),
    detectedAt: int(row.detected_at),
    lastGoodAt: intOrNull(row.last_good_at),
    actionStartedAt: intOrNull(row.action_started_at),
    mitigatedAt: intOrNull(row.mitigated_at),
    closedAt: intOrNull(row.closed_at),
    stabilizedAt: intOrNull(row.stabilized_at ?? null),
    verifiedAt: intOrNull(row.verified_at ?? null),
    ttdMs: intOrNull(row.ttd_ms),
    ttrMs: intOrNull(row.ttr_ms),
    detail: text(row.detail),
  };
}

export function timelineFromRow(row: Row): TimelineEntry {
  return { at: int(row.at), phase: text(row.phase), detail: text(row.detail) };
}

export function eventFromRow(row: Row): EventRecord {
  const event: EventRecord = {
    seq: int(row.seq),
    at: int(row.at),
    type: text(row.type),
    reason: text(row.reason),
    message: text(row.message),
  };
  if (row.service !== null) event.service = text(row.service);
  if (row.instance !== null) event.instance = text(row.instance);
  if (row.data !== null) event.data = JSON.parse(text(row.data));
  return event;
}

export function journalFromRow(row: Row): JournalRecord {
  const record: JournalRecord = {
    id: int(row.id),
    at: int(row.at),
    action: text(row.action),
    target: text(row.target),
    reason: text(row.reason),
    result:
      row.result_at === null
        ? null
        : { at: int(row.result_at), ok: int(row.result_ok) === 1, detail: text(row.result_detail) },
  };
  if (row.data !== null) record.data = JSON.parse(text(row.data));
  if (row.token !== null && row.token !== undefined) record.token = int(row.token);
  return record;
}
