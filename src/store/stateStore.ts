/**
 * The controller's durable memory: one SQLite file, `state.db`, in the state directory.
 *
 * Built for a controller that may be SIGKILLed at any instant: WAL journal, every multi-row
 * change in one transaction, and nothing written until the file has been checked (see
 * `stateFile.ts`). `synchronous=NORMAL` keeps every committed transaction across a process
 * crash; only an OS crash or power cut can lose the last few, never corrupt the file.
 */

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { HomeostatError } from "../errors.ts";
import { isProcessAlive, processStartTime } from "../lib/procStat.ts";
import { AuditLog } from "./audit.ts";
import { BrakeStore } from "./brakeStore.ts";
import { fenced, LeadershipStore } from "./leadership.ts";
import { MIGRATIONS, migrate } from "./migrations.ts";
import type {
  ControllerInfo,
  EventRecord,
  FleetRecord,
  IncidentPatch,
  IncidentRecord,
  InstanceRecord,
  JournalIntent,
  JournalRecord,
  JournalResult,
  NewEvent,
  NewIncident,
  ReleaseRecord,
  SlotRecord,
  TimelineEntry,
} from "./records.ts";
import { ReleaseLedger } from "./releaseLedger.ts";
import {
  controllerFromRow,
  eventFromRow,
  incidentFromRow,
  instanceFromRow,
  journalFromRow,
  type Row,
  releaseFromRow,
  slotFromRow,
  timelineFromRow,
  toJson,
} from "./rows.ts";
import { SpecRevisions } from "./specRevisions.ts";
import type { SqlDatabase, SqlValue } from "./sql/database.ts";
import { FencedWrites } from "./sql/fencedWrites.ts";
import { PostgresDatabase } from "./sql/postgresDatabase.ts";
import { SqliteDatabase } from "./sql/sqliteDatabase.ts";
import { checkStateFile } from "./stateFile.ts";
import { TokenStore } from "./tokens.ts";

/**
 * A change the store just wrote, as {@link StateStore.subscribe} listeners receive it: an appended
 * event, or an incident as it is after being opened, updated or given a timeline step (with its
 * timeline).
 */
export type StoreChange =
  | { kind: "event"; event: EventRecord }
  | { kind: "incident"; incident: IncidentRecord & { timeline: TimelineEntry[] } };

/** Called synchronously after each write it is told about; it must not write to the store itself. */
export type StoreListener = (change: StoreChange) => void;

/** File name of the database inside the state directory. */
export const STATE_FILE_NAME = "state.db";

/** How long a write waits for another connection's write lock (a CLI reading, a second controller starting). */
const BUSY_TIMEOUT_MS = 5_000;

const INCIDENT_PATCH_COLUMNS: Record<keyof IncidentPatch, string> = {
  status: "status",
  reason: "reason",
  actionStartedAt: "action_started_at",
  mitigatedAt: "mitigated_at",
  closedAt: "closed_at",
  stabilizedAt: "stabilized_at",
  verifiedAt: "verified_at",
  ttdMs: "ttd_ms",
  ttrMs: "ttr_ms",
  detail: "detail",
};

/** `col = excluded.col, …`: an upsert that replaces every column but the key (both dialects). */
const replaceColumns = (columns: string[]): string => columns.map((c) => `${c} = excluded.${c}`).join(", ");
const INSTANCE_UPSERT = replaceColumns(
  "service slot port release zone host pid start_time log_path started_at generation desired last_exit_code last_exit_signal last_exit_at config_hash secret_versions".split(
    " ",
  ),
);
const SLOT_UPSERT = replaceColumns(
  "consecutive_failures restart_times next_start_at crash_loop updated_at".split(" "),
);

export class StateStore {
  /** Absolute path of `state.db`, or the PostgreSQL store's address (without its password). */
  readonly path: string;
  readonly #db: SqlDatabase;
  /** The connection itself, for the journal's own fenced insert (one statement, its own event). */
  readonly #raw: SqlDatabase;
  #ledger: ReleaseLedger | undefined;
  #tokens: TokenStore | undefined;
  #audit: AuditLog | undefined;
  #revisions: SpecRevisions | undefined;
  #leadership: LeadershipStore | undefined;
  #brakes: BrakeStore | undefined;
  #fencingToken: number | null = null;
  readonly #listeners = new Set<StoreListener>();
  /** Incident writes through this object (see listOpenIncidentsWrittenHere). */
  #incidentWrites = 0;
  #openIncidents: { writes: number; incidents: IncidentRecord[] } | null = null;

  private constructor(path: string, db: SqlDatabase) {
    this.path = path;
    this.#raw = db;
    // Every class of the store writes through this: once the controller leads, a write that
    // changes the fleet's state lands only while its token holds the lease (see fencedWrites.ts).
    this.#db = new FencedWrites(db, () => this.#fencingToken, {
      error: (token, table) => fenced(token, this.leadership.current(), `a write to ${table}`),
      refused: (token, table, error) => {
        try {
          this.appendEvent({
            at: Date.now(),
            type: "store.fenced",
            reason: "fenced",
            message: `${error.message}: nothing was written`,
            data: { token, table },
          });
        } catch {
          // The store may be what failed; the refusal stands.
        }
      },
    });
  }

  /**
   * Opens the store and migrates it to the current schema: the state database of `stateDir`
   * (creating the directory and file if needed), or, given `store` (a `postgres://` address; see
   * `docs/operations.md#several-controllers`), the PostgreSQL store several controllers share.
   *
   * @throws HomeostatError HS_STATE_CORRUPT, HS_STATE_FOREIGN or HS_STATE_TOO_NEW, with the
   *   store left untouched; HS_STORE_UNAVAILABLE when PostgreSQL cannot be reached.
   */
  static open(stateDir: string, store?: string): StateStore {
    if (store !== undefined) return StateStore.#migrated(PostgresDatabase.connect(store));
    const dir = resolve(stateDir);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, STATE_FILE_NAME);
    checkStateFile(path);
    const db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS, enableForeignKeyConstraints: true });
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
    } catch (error) {
      db.close();
      throw error;
    }
    return StateStore.#migrated(new SqliteDatabase(db, path));
  }

  static #migrated(db: SqlDatabase): StateStore {
    try {
      migrate(db, MIGRATIONS);
    } catch (error) {
      db.close();
      throw error;
    }
    return new StateStore(db.location, db);
  }

  /** Which backend this store is on. */
  get dialect(): SqlDatabase["dialect"] {
    return this.#db.dialect;
  }

  /** The leader lease and fencing token, on the same connection. */
  get leadership(): LeadershipStore {
    this.#leadership ??= new LeadershipStore(this.#db);
    return this.#leadership;
  }

  /** Automation brakes: the pause and the automated actions the rate limits count, on the same connection. */
  get brakes(): BrakeStore {
    this.#brakes ??= new BrakeStore(this.#db);
    return this.#brakes;
  }

  /** Release history, rollouts and the live facts rollbacks depend on, on the same connection. */
  get ledger(): ReleaseLedger {
    this.#ledger ??= new ReleaseLedger(this.#db);
    return this.#ledger;
  }

  /** API tokens (hashes only), on the same connection. */
  get tokens(): TokenStore {
    this.#tokens ??= new TokenStore(this.#db);
    return this.#tokens;
  }

  /** The audit trail of changes asked of the API, on the same connection. */
  get audit(): AuditLog {
    this.#audit ??= new AuditLog(this.#db);
    return this.#audit;
  }

  /** Spec revisions (every fleet file applied, numbered), on the same connection. */
  get revisions(): SpecRevisions {
    this.#revisions ??= new SpecRevisions(this.#db);
    return this.#revisions;
  }

  /** Closes the database (checkpointing the WAL into the main file). Calling it twice is harmless. */
  close(): void {
    if (!this.#db.isOpen) return;
    this.#db.close();
  }

  /**
   * Calls `listener` after every appended event and every incident change (opened, updated, a
   * timeline step), synchronously, once the write is committed. A listener that throws is
   * ignored: the write it was told about stands, and the other listeners are still called.
   * Returns the function that unsubscribes it.
   */
  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #publish(change: () => StoreChange | null): void {
    if (this.#listeners.size === 0) return;
    const value = change();
    if (value === null) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(value);
      } catch {
        // A listener's failure is its own (see subscribe): the store's write has happened.
      }
    }
  }

  #publishIncident(id: number): void {
    // Every incident write goes through here (after it ran, or inside a transaction that may
    // still roll back: either way the cached open incidents are read again).
    this.#incidentWrites++;
    this.#publish(() => {
      const incident = this.getIncident(id);
      return incident === null ? null : { kind: "incident", incident };
    });
  }

  // ── Controller ownership ───────────────────────────────────────────────────

  /**
   * Claims the state directory for the controller process `info.pid`. Succeeds if nobody holds
   * it, if the holder is gone (or its pid now belongs to another process: it was SIGKILLed), or
   * if the holder is this very process. Returns the previous holder, if any, so the new
   * controller knows it is taking over from a crashed one.
   *
   * @throws HomeostatError HS_STATE_LOCKED naming the live holder's pid and API port.
   */
  acquireControllerLock(info: { pid: number; apiPort: number; startedAt: number }): {
    previous: ControllerInfo | null;
  } {
    return this.#db.transaction(() => {
      const row = this.#get("SELECT * FROM controller WHERE id = 1");
      const previous = row ? controllerFromRow(row) : null;
      const startTime = processStartTime(info.pid);
      if (previous && isProcessAlive(previous.pid, previous.startTime)) {
        const sameProcess = previous.pid === info.pid && previous.startTime === startTime;
        if (!sameProcess) {
          throw new HomeostatError(
            "HS_STATE_LOCKED",
            `${this.path}: another controller owns this state directory (pid ${previous.pid}, API port ` +
              `${previous.apiPort}, started ${new Date(previous.startedAt).toISOString()}). ` +
              "Stop it first, or use another state directory",
            { details: { path: this.path, ...previous } },
          );
        }
      }
      this.#run(
        `INSERT INTO controller (id, pid, start_time, api_port, started_at) VALUES (1, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, start_time = excluded.start_time,
           api_port = excluded.api_port, started_at = excluded.started_at`,
        info.pid,
        startTime,
        info.apiPort,
        info.startedAt,
      );
      return { previous };
    });
  }

  /**
   * Records `info` as the controller of this store without the pid check: on a PostgreSQL store
   * the lease, not a pid on one machine, decides who leads (an earlier leader's process may still
   * be alive: frozen, or partitioned away).
   */
  recordControllerOwner(info: { pid: number; apiPort: number; startedAt: number }): void {
    this.#run(
      `INSERT INTO controller (id, pid, start_time, api_port, started_at) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, start_time = excluded.start_time,
         api_port = excluded.api_port, started_at = excluded.started_at`,
      info.pid,
      processStartTime(info.pid),
      info.apiPort,
      info.startedAt,
    );
  }

  /** Gives the state directory up, if `pid` holds it (a no-op otherwise). */
  releaseControllerLock(pid: number): void {
    this.#run("DELETE FROM controller WHERE id = 1 AND pid = ?", pid);
  }

  /** The recorded holder, live or not (the CLI uses it to find the API port). */
  controllerInfo(): ControllerInfo | null {
    const row = this.#get("SELECT * FROM controller WHERE id = 1");
    return row ? controllerFromRow(row) : null;
  }

  // ── Failover ───────────────────────────────────────────────────────────────

  /** The zone failover state as last saved (JSON), or null: a restarted controller resumes from it. */
  failoverState(): string | null {
    const row = this.#get("SELECT state_json FROM failover_state WHERE id = 1");
    return row ? String(row.state_json) : null;
  }

  saveFailoverState(json: string, at: number): void {
    this.#run(
      `INSERT INTO failover_state (id, state_json, updated_at) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at`,
      json,
      at,
    );
  }

  // ── Fleet ──────────────────────────────────────────────────────────────────

  /** Remembers a fleet as applied (history is kept for audit; `lastFleet` returns the newest). */
  recordFleet(file: string, specJson: string, at: number): void {
    this.#run("INSERT INTO fleet_applies (file, spec_json, at) VALUES (?, ?, ?)", file, specJson, at);
  }

  lastFleet(): FleetRecord | null {
    const row = this.#get("SELECT file, spec_json, at FROM fleet_applies ORDER BY id DESC LIMIT 1");
    return row ? { file: row.file as string, specJson: row.spec_json as string, at: row.at as number } : null;
  }

  /** Records a release as seen at `at`. Idempotent; `firstSeen` keeps the first sighting. */
  upsertRelease(r: {
    service: string;
    version: string;
    specJson: string;
    contentHash: string;
    at: number;
  }): void {
    this.#run(
      `INSERT INTO releases (service, version, spec_json, content_hash, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (service, version) DO UPDATE SET
         spec_json = excluded.spec_json,
         content_hash = excluded.content_hash,
         last_seen = CASE WHEN excluded.last_seen > releases.last_seen THEN excluded.last_seen ELSE releases.last_seen END`,
      r.service,
      r.version,
      r.specJson,
      r.contentHash,
      r.at,
      r.at,
    );
  }

  /** Releases, by service then first sighting. */
  listReleases(service?: string): ReleaseRecord[] {
    const rows =
      service === undefined
        ? this.#all("SELECT * FROM releases ORDER BY service, first_seen, version")
        : this.#all("SELECT * FROM releases WHERE service = ? ORDER BY first_seen, version", service);
    return rows.map(releaseFromRow);
  }

  // ── Instances and slots ────────────────────────────────────────────────────

  /** Inserts or replaces the instance named `r.name`. */
  putInstance(r: InstanceRecord): void {
    this.#run(
      `INSERT INTO instances (name, service, slot, port, release, zone, host, pid, start_time,
         log_path, started_at, generation, desired, last_exit_code, last_exit_signal, last_exit_at,
         config_hash, secret_versions)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET ${INSTANCE_UPSERT}`,
      r.name,
      r.service,
      r.slot,
      r.port,
      r.release,
      r.zone,
      r.host,
      r.pid,
      r.startTime,
      r.logPath,
      r.startedAt,
      r.generation,
      r.desired,
      r.lastExit?.code ?? null,
      r.lastExit?.signal ?? null,
      r.lastExit?.at ?? null,
      r.configHash ?? null,
      r.secretVersions === null || r.secretVersions === undefined ? null : JSON.stringify(r.secretVersions),
    );
  }

  getInstance(name: string): InstanceRecord | null {
    const row = this.#get("SELECT * FROM instances WHERE name = ?", name);
    return row ? instanceFromRow(row) : null;
  }

  /** All instances, by service then slot. */
  listInstances(): InstanceRecord[] {
    return this.#all("SELECT * FROM instances ORDER BY service, slot").map(instanceFromRow);
  }

  deleteInstance(name: string): void {
    this.#run("DELETE FROM instances WHERE name = ?", name);
  }

  getSlot(instance: string): SlotRecord | null {
    const row = this.#get("SELECT * FROM slots WHERE instance = ?", instance);
    return row ? slotFromRow(row) : null;
  }

  /** Inserts or replaces the slot bookkeeping of `r.instance`. */
  putSlot(r: SlotRecord): void {
    this.#run(
      `INSERT INTO slots (instance, consecutive_failures, restart_times, next_start_at, crash_loop, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (instance) DO UPDATE SET ${SLOT_UPSERT}`,
      r.instance,
      r.consecutiveFailures,
      JSON.stringify(r.restartTimes),
      r.nextStartAt,
      r.crashLoop ? 1 : 0,
      r.updatedAt,
    );
  }

  listSlots(): SlotRecord[] {
    return this.#all("SELECT * FROM slots ORDER BY instance").map(slotFromRow);
  }

  // ── Incidents ──────────────────────────────────────────────────────────────

  /** Opens an incident (status "open") and returns it with its id. */
  openIncident(i: NewIncident): IncidentRecord {
    const inserted = this.#get(
      `INSERT INTO incidents (service, instance, kind, status, reason, detected_at, last_good_at, ttd_ms, detail)
       VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?) RETURNING id`,
      i.service,
      i.instance,
      i.kind,
      i.reason,
      i.detectedAt,
      i.lastGoodAt ?? null,
      i.ttdMs ?? null,
      i.detail ?? "",
    );
    const id = Number(inserted?.id);
    this.#publishIncident(id);
    return this.#incident(id)!;
  }

  /**
   * Changes the given fields of incident `id` (fields set to `undefined` are left alone) and
   * returns the whole incident.
   *
   * @throws HomeostatError HS_NOT_FOUND if there is no such incident.
   */
  updateIncident(id: number, patch: IncidentPatch): IncidentRecord {
    const assignments: string[] = [];
    const values: SqlValue[] = [];
    for (const [key, column] of Object.entries(INCIDENT_PATCH_COLUMNS)) {
      const value = patch[key as keyof IncidentPatch];
      if (value === undefined) continue;
      assignments.push(`${column} = ?`);
      values.push(value);
    }
    const updated = this.#db.transaction(() => {
      if (assignments.length > 0) {
        this.#run(`UPDATE incidents SET ${assignments.join(", ")} WHERE id = ?`, ...values, id);
      }
      const incident = this.#incident(id);
      if (!incident) throw incidentNotFound(id);
      return incident;
    });
    this.#publishIncident(id);
    return updated;
  }

  /**
   * Appends a step to incident `id`'s timeline.
   *
   * @throws HomeostatError HS_NOT_FOUND if there is no such incident.
   */
  addIncidentEvent(id: number, e: TimelineEntry): void {
    this.#db.transaction(() => {
      if (!this.#get("SELECT 1 FROM incidents WHERE id = ?", id)) throw incidentNotFound(id);
      this.#run(
        "INSERT INTO incident_events (incident_id, at, phase, detail) VALUES (?, ?, ?, ?)",
        id,
        e.at,
        e.phase,
        e.detail,
      );
    });
    this.#publishIncident(id);
  }

  /** An incident with its timeline in the order it was written, or null. */
  getIncident(id: number): (IncidentRecord & { timeline: TimelineEntry[] }) | null {
    // One read transaction, so the timeline belongs to the incident as read.
    return this.#db.readTransaction(() => {
      const incident = this.#incident(id);
      if (!incident) return null;
      const timeline = this.#all(
        "SELECT at, phase, detail FROM incident_events WHERE incident_id = ? ORDER BY id",
        id,
      ).map(timelineFromRow);
      return { ...incident, timeline };
    });
  }

  /** Incidents, newest (by detection) first. */
  listIncidents(q: { status?: "open" | "closed"; service?: string; limit?: number } = {}): IncidentRecord[] {
    const where: string[] = [];
    const values: SqlValue[] = [];
    if (q.status !== undefined) {
      where.push("status = ?");
      values.push(q.status);
    }
    if (q.service !== undefined) {
      where.push("service = ?");
      values.push(q.service);
    }
    const filter = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    return this.#all(
      `SELECT * FROM incidents ${filter} ORDER BY detected_at DESC, id DESC LIMIT ?`,
      ...values,
      sqlLimit(q.limit),
    ).map(incidentFromRow);
  }

  /**
   * The open incidents (newest first), as {@link listIncidents} with `status: "open"`, read from
   * the store again only when this object has written an incident since the last read. For the
   * process that alone writes the store — the leading controller, whose every pass asks (issue
   * 15: a query four times a second, a third of an idle pass's CPU). A process that only reads
   * the store while another writes it (a follower, the CLI) must use `listIncidents`: it would
   * not see the other's writes here. The records are shared: callers must not change them. Not
   * from inside a transaction (a read there could cache a write that is then rolled back).
   */
  listOpenIncidentsWrittenHere(): readonly IncidentRecord[] {
    const cached = this.#openIncidents;
    if (cached !== null && cached.writes === this.#incidentWrites) return cached.incidents;
    const writes = this.#incidentWrites;
    const incidents = this.listIncidents({ status: "open" });
    this.#openIncidents = { writes, incidents };
    return incidents;
  }

  /** The open incident of `instance` (the newest, should there be several), or null. */
  openIncidentFor(instance: string): IncidentRecord | null {
    const row = this.#get(
      "SELECT * FROM incidents WHERE instance = ? AND status = 'open' ORDER BY detected_at DESC, id DESC LIMIT 1",
      instance,
    );
    return row ? incidentFromRow(row) : null;
  }

  // ── Events ─────────────────────────────────────────────────────────────────

  /** Appends an event; its `seq` is greater than that of every event before it, and never reused. */
  appendEvent(e: NewEvent): EventRecord {
    const inserted = this.#get(
      "INSERT INTO events (at, type, service, instance, reason, message, data) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
      e.at,
      e.type,
      e.service ?? null,
      e.instance ?? null,
      e.reason,
      e.message,
      toJson(e.data),
    );
    // Built the way `eventFromRow` builds it, so an appended event equals the same event listed.
    const event: EventRecord = {
      seq: Number(inserted?.seq),
      at: e.at,
      type: e.type,
      reason: e.reason,
      message: e.message,
    };
    if (e.service !== undefined) event.service = e.service;
    if (e.instance !== undefined) event.instance = e.instance;
    if (e.data !== undefined) event.data = JSON.parse(JSON.stringify(e.data));
    this.#publish(() => ({ kind: "event", event }));
    return event;
  }

  /**
   * Events in ascending `seq`. With `afterSeq`: those after it (up to `limit`), for following.
   * With only `limit`: the last `limit` events.
   */
  listEvents(q: { afterSeq?: number; limit?: number; service?: string } = {}): EventRecord[] {
    const where: string[] = [];
    const values: SqlValue[] = [];
    if (q.afterSeq !== undefined) {
      where.push("seq > ?");
      values.push(q.afterSeq);
    }
    if (q.service !== undefined) {
      where.push("service = ?");
      values.push(q.service);
    }
    const filter = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    const rows =
      q.afterSeq === undefined && q.limit !== undefined
        ? this.#all(
            `SELECT * FROM (SELECT * FROM events ${filter} ORDER BY seq DESC LIMIT ?) AS latest ORDER BY seq`,
            ...values,
            sqlLimit(q.limit),
          )
        : this.#all(`SELECT * FROM events ${filter} ORDER BY seq LIMIT ?`, ...values, sqlLimit(q.limit));
    return rows.map(eventFromRow);
  }

  // ── Action journal ─────────────────────────────────────────────────────────

  /**
   * From now on, every journal intent carries `token` and is written only while `token` holds the
   * lease (see {@link StateStore.journalIntent}). Set once this controller leads.
   */
  fenceJournal(token: number): void {
    this.#fencingToken = token;
  }

  /** The fencing token this store's journal writes with, or null before the controller leads. */
  get fencingToken(): number | null {
    return this.#fencingToken;
  }

  /**
   * Records what the controller is about to do, before doing it. Returns the entry's id. Once
   * fenced (see {@link StateStore.fenceJournal}), the entry is written in the same statement that
   * checks the lease: a controller whose lease has passed to another cannot journal, hence cannot act.
   *
   * @throws HomeostatError HS_FENCED when the lease is no longer this token's
   */
  journalIntent(j: JournalIntent): number {
    const token = this.#fencingToken;
    if (token === null) {
      const inserted = this.#get(
        "INSERT INTO journal (at, action, target, reason, data) VALUES (?, ?, ?, ?, ?) RETURNING id",
        j.at,
        j.action,
        j.target,
        j.reason,
        toJson(j.data),
      );
      return Number(inserted?.id);
    }
    const inserted = this.#raw.get(
      `INSERT INTO journal (at, action, target, reason, data, token)
       SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (
         SELECT 1 FROM leadership WHERE id = 1 AND token = ? AND expires_at > ${this.#raw.clockSql})
       RETURNING id`,
      j.at,
      j.action,
      j.target,
      j.reason,
      toJson(j.data),
      token,
      token,
    );
    if (inserted === undefined) {
      const error = fenced(token, this.leadership.current(), `journal entry "${j.action} ${j.target}"`);
      // Said where everyone looks, even though this controller may be the last to read it.
      this.appendEvent({
        at: j.at,
        type: "journal.fenced",
        reason: "fenced",
        message: `${error.message}: nothing was done`,
        data: { token, action: j.action, target: j.target },
      });
      throw error;
    }
    return Number(inserted.id);
  }

  /**
   * Records how intent `id` turned out.
   *
   * @throws HomeostatError HS_NOT_FOUND if there is no such intent, HS_INTERNAL if it already
   *   has a result.
   */
  journalResult(id: number, r: JournalResult): void {
    this.#db.transaction(() => {
      const updated = this.#run(
        "UPDATE journal SET result_at = ?, result_ok = ?, result_detail = ? WHERE id = ? AND result_at IS NULL",
        r.at,
        r.ok ? 1 : 0,
        r.detail,
        id,
      );
      if (updated.changes > 0) return;
      if (this.#get("SELECT 1 FROM journal WHERE id = ?", id)) {
        throw new HomeostatError("HS_INTERNAL", `journal entry ${id} already has a result`, {
          details: { id },
        });
      }
      throw new HomeostatError("HS_NOT_FOUND", `no journal entry ${id}`, { details: { id } });
    });
  }

  /** Journal entries in ascending id; with `limit`, the last `limit` of them. */
  listJournal(q: { limit?: number; pendingOnly?: boolean } = {}): JournalRecord[] {
    const filter = q.pendingOnly ? "WHERE result_at IS NULL" : "";
    return this.#all(
      `SELECT * FROM (SELECT * FROM journal ${filter} ORDER BY id DESC LIMIT ?) AS latest ORDER BY id`,
      sqlLimit(q.limit),
    ).map(journalFromRow);
  }

  /** Intents with no result: what a controller was in the middle of when it died. */
  pendingIntents(): JournalRecord[] {
    return this.listJournal({ pendingOnly: true });
  }

  // ── Internals ──────────────────────────────────────────────────────────────

  #incident(id: number): IncidentRecord | null {
    const row = this.#get("SELECT * FROM incidents WHERE id = ?", id);
    return row ? incidentFromRow(row) : null;
  }

  #run(sql: string, ...values: SqlValue[]) {
    return this.#db.run(sql, ...values);
  }

  #get(sql: string, ...values: SqlValue[]): Row | undefined {
    return this.#db.get(sql, ...values);
  }

  #all(sql: string, ...values: SqlValue[]): Row[] {
    return this.#db.all(sql, ...values);
  }
}

/** A caller's `limit` as SQL: -1 means no limit. */
function sqlLimit(limit: number | undefined): number {
  // The largest LIMIT both SQLite and PostgreSQL take (PostgreSQL refuses SQLite's -1).
  if (limit === undefined) return Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new HomeostatError("HS_BAD_REQUEST", `limit must be a whole number ≥ 0, got ${limit}`, {
      details: { limit },
    });
  }
  return limit;
}

function incidentNotFound(id: number): HomeostatError {
  return new HomeostatError("HS_NOT_FOUND", `no incident ${id}`, { details: { id } });
}
