/**
 * One client of the event stream (`GET /v1/stream`): a Server-Sent Events response that a stream
 * hub feeds. It owns the only per-client memory, a queue of frames bounded in bytes, and writes
 * only as fast as the socket takes them ('drain'): a slow client never makes the controller
 * buffer without bound. Events are replayed from the store (paged, at the socket's pace) when
 * the client resumes after an id, then followed live, with no gap and no duplicate: the store is
 * read and the live listener runs on the same thread, and every event carries its `seq`.
 */

import type { ServerResponse } from "node:http";
import type { EventRecord, IncidentRecord, StateStore, TimelineEntry } from "../../store/index.ts";

/** The id an event frame carries (`id: e42`), and what `Last-Event-ID` sends back. */
export function eventId(seq: number): string {
  return `e${seq}`;
}

/** `e42` or `42` → 42; anything else → null. */
export function parseEventId(text: string): number | null {
  const match = /^e?(\d{1,15})$/.exec(text.trim());
  return match === null ? null : Number(match[1]);
}

export interface StreamClientOptions {
  store: StateStore;
  /** Only this service's events, incidents and status. */
  service: string | undefined;
  /** The token the stream was opened with (its revocation ends the stream); null: none needed. */
  tokenId?: number | null;
  /** Replay the events after this seq before following live; null: live from now. */
  after: number | null;
  /** Bytes of frames the client may have queued before it is told `reset` and closed. */
  maxQueuedBytes: number;
  /** Events read from the store per page while replaying. */
  pageSize: number;
  /** Called once, when the client is gone (closed by either side). */
  onClosed(client: StreamClient): void;
}

interface Frame {
  text: string;
  /** The event's seq, for event frames. */
  seq?: number;
}

export class StreamClient {
  readonly service: string | undefined;
  readonly tokenId: number | null;
  readonly #raw: ServerResponse;
  readonly #options: StreamClientOptions;
  readonly #queue: Frame[] = [];
  #queuedBytes = 0;
  /** The newest event seq queued (or skipped by the filter while replaying). */
  #lastSeq: number;
  /** The newest event seq handed to the socket: what a resume after a `reset` starts from. */
  #lastWrittenSeq: number;
  #replaying: boolean;
  #waitingForDrain = false;
  #opened = false;
  #closed = false;

  constructor(raw: ServerResponse, options: StreamClientOptions) {
    this.#raw = raw;
    this.#options = options;
    this.service = options.service;
    this.tokenId = options.tokenId ?? null;
    const newest = options.store.listEvents({ limit: 1 }).at(-1)?.seq ?? 0;
    // An id from after the newest event (another state directory's): follow live from now.
    const start = options.after === null ? newest : Math.min(options.after, newest);
    this.#lastSeq = start;
    this.#lastWrittenSeq = start;
    this.#replaying = options.after !== null && start < newest;
    raw.on("close", () => this.#gone());
    raw.on("error", () => this.#gone());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends the response head and whatever the client resumes from. */
  open(): void {
    this.#raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // Proxies (nginx) must pass frames on as they come.
      "x-accel-buffering": "no",
    });
    // A browser's EventSource reconnects after this long; fetch readers choose their own.
    this.#raw.write("retry: 2000\n\n");
    this.#opened = true;
    this.#pump();
  }

  /** A live event: queued unless the replay will read it from the store, or the filter skips it. */
  event(event: EventRecord): void {
    if (this.#closed || this.#replaying || event.seq <= this.#lastSeq) return;
    this.#lastSeq = event.seq;
    if (!this.#wants(event.service)) return;
    this.#enqueue({ text: eventFrame(event), seq: event.seq });
  }

  /** An incident as it is now. */
  incident(incident: IncidentRecord & { timeline?: TimelineEntry[] }): void {
    if (this.#closed || !this.#wants(incident.service)) return;
    this.#enqueue({ text: `event: incident\ndata: ${JSON.stringify(incident)}\n\n` });
  }

  /** A status document (already filtered to the client's service). */
  status(document: unknown): void {
    if (this.#closed) return;
    this.#enqueue({ text: `event: status\ndata: ${JSON.stringify(document)}\n\n` });
  }

  /** A comment line that keeps proxies and NATs from timing the connection out. */
  heartbeat(): void {
    if (this.#closed) return;
    this.#enqueue({ text: ": heartbeat\n\n" });
  }

  /** Ends the stream (the controller is stopping). */
  close(): void {
    if (this.#closed) return;
    if (this.#opened) this.#raw.end();
    else this.#raw.destroy();
    this.#gone();
  }

  /** Ends the stream with a final `error` frame (its token was revoked): nothing queued is sent. */
  refuse(envelope: unknown): void {
    if (this.#closed) return;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    if (this.#opened) {
      this.#raw.end(`event: error\ndata: ${JSON.stringify(envelope)}\n\n`);
      // A client that reads nothing would hold the socket open; end() waits for it to drain.
      setTimeout(() => this.#raw.destroy(), 5_000).unref();
    } else {
      this.#raw.destroy();
    }
    this.#gone();
  }

  #wants(service: string | undefined): boolean {
    return this.#options.service === undefined || service === this.#options.service;
  }

  #enqueue(frame: Frame): void {
    if (this.#queuedBytes + frame.text.length > this.#options.maxQueuedBytes) {
      this.#reset();
      return;
    }
    this.#queue.push(frame);
    this.#queuedBytes += frame.text.length;
    this.#pump();
  }

  /**
   * Too far behind: what is queued is dropped, a final `reset` frame says where to resume from
   * (the last event the socket took), and the stream ends.
   */
  #reset(): void {
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    const data = {
      reason: `the client fell more than ${this.#options.maxQueuedBytes} bytes behind; resume with Last-Event-ID`,
      lastEventId: eventId(this.#lastWrittenSeq),
    };
    this.#raw.end(`event: reset\ndata: ${JSON.stringify(data)}\n\n`);
    // A client that reads nothing would hold the socket open; end() waits for it to drain.
    setTimeout(() => this.#raw.destroy(), 5_000).unref();
    this.#gone();
  }

  /** Writes queued frames while the socket takes them; replays the next page when the queue is empty. */
  #pump(): void {
    while (this.#opened && !this.#closed && !this.#waitingForDrain) {
      if (this.#queue.length > 0) {
        const frames = this.#queue.splice(0);
        this.#queuedBytes = 0;
        const seqs = frames.filter((f) => f.seq !== undefined).map((f) => f.seq!);
        const accepted = this.#raw.write(frames.map((f) => f.text).join(""));
        if (seqs.length > 0) this.#lastWrittenSeq = seqs.at(-1)!;
        if (!accepted) {
          this.#waitingForDrain = true;
          this.#raw.once("drain", () => {
            this.#waitingForDrain = false;
            this.#pump();
          });
        }
        continue;
      }
      if (!this.#replaying) return;
      const page = this.#options.store.listEvents({
        afterSeq: this.#lastSeq,
        limit: this.#options.pageSize,
        ...(this.#options.service === undefined ? {} : { service: this.#options.service }),
      });
      for (const event of page) {
        this.#queue.push({ text: eventFrame(event), seq: event.seq });
        this.#lastSeq = event.seq;
      }
      // Events appended from here on reach `event()` live: the store is not read concurrently.
      if (page.length < this.#options.pageSize) {
        this.#replaying = false;
        // With a filter, events of other services were skipped: live delivery starts after the newest.
        this.#lastSeq = Math.max(
          this.#lastSeq,
          this.#options.store.listEvents({ limit: 1 }).at(-1)?.seq ?? 0,
        );
      }
    }
  }

  #gone(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#options.onClosed(this);
  }
}

function eventFrame(event: EventRecord): string {
  return `id: ${eventId(event.seq)}\nevent: event\ndata: ${JSON.stringify(event)}\n\n`;
}
