/**
 * `GET /v1/stream`: what the controller sees, as it happens, in Server-Sent Events (viewer role).
 *
 * - `event` frames carry each stored event, with `id: e<seq>`;
 * - `incident` frames carry an incident as it is after each change (opened, updated, a timeline
 *   step), timeline included;
 * - `status` frames carry the status document: once on connect, then whenever it changed, checked
 *   at most once a second;
 * - a `: heartbeat` comment every 15 s;
 * - a final `reset` frame to a client that fell too far behind, before the stream ends;
 * - a final `error` frame (the API's error envelope, `HS_UNAUTHENTICATED`) when the client's token
 *   is revoked: within a status check (1 s), the stream ends.
 *
 * `Last-Event-ID: e<seq>` (or `?after=SEQ`) replays the events after it from the store before the
 * live ones, without a gap or a duplicate. `?service=NAME` keeps one service's frames. The
 * dashboard reads it with fetch and a stream reader, so the token travels in the Authorization
 * header, never in the URL.
 */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { StateStore, StoreChange } from "../../store/index.ts";
import { envelopeOf } from "../errorEnvelope.ts";
import { principalOf, route } from "../route.ts";
import { parseEventId, StreamClient } from "./streamClient.ts";

/** What the stream reads: `ApiDeps` has it all. */
export interface StreamDeps {
  store: StateStore;
  status: () => unknown;
  /** Counts connected clients (the controller's metrics). */
  controllerMetrics?: { streamClients(delta: 1 | -1): void };
}

/** Tunables of the stream; the defaults are the documented behaviour, tests shorten them. */
export interface StreamOptions {
  /** Time between heartbeat comments. Default 15 s. */
  heartbeatMs?: number;
  /** How often the status document is checked for a change. Default 1 s. */
  statusIntervalMs?: number;
  /** Bytes of frames one client may have waiting before it is reset. Default 4 MiB. */
  maxQueuedBytes?: number;
  /** Events read from the store per page when replaying. Default 500. */
  pageSize?: number;
  /** Clients connected at once; one more is refused (503) so that streams cannot add up without bound. Default 64. */
  maxClients?: number;
}

const streamQuery = z
  .object({
    after: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe("replay the events with a larger seq first (the Last-Event-ID header wins)"),
    service: z.string().min(1).optional().describe("only this service's events, incidents and status"),
  })
  .strict();

/** Fields of the status document that change on every read without anything having happened. */
const VOLATILE_STATUS_KEYS = new Set([
  "now",
  "lastReportAt",
  "appliedIssuedAt",
  "pushedVersion",
  "appliedVersion",
]);

/** The status document without its clock readings: equal fingerprints mean nothing changed. */
export function statusFingerprint(document: unknown): string {
  return JSON.stringify(document, (key, value) => (VOLATILE_STATUS_KEYS.has(key) ? undefined : value));
}

/** The status document as a client filtered to `service` sees it. */
function statusFor(document: unknown, service: string | undefined): unknown {
  if (service === undefined) return document;
  const doc = document as { services?: { name: string }[] };
  if (!Array.isArray(doc.services)) return document;
  return { ...doc, services: doc.services.filter((s) => s.name === service) };
}

/** Declares `GET /v1/stream` on `app`; its clients are ended when the app closes. */
export function streamRoutes(app: FastifyInstance, deps: StreamDeps, options: StreamOptions = {}): void {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const statusIntervalMs = options.statusIntervalMs ?? 1_000;
  const maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
  const pageSize = options.pageSize ?? 500;
  const maxClients = options.maxClients ?? 64;
  const clients = new Set<StreamClient>();
  let unsubscribe: (() => void) | null = null;
  let heartbeat: NodeJS.Timeout | null = null;
  let statusTimer: NodeJS.Timeout | null = null;
  let lastStatus: { document: unknown; fingerprint: string } | null = null;

  const onChange = (change: StoreChange): void => {
    for (const client of clients) {
      if (change.kind === "event") client.event(change.event);
      else client.incident(change.incident);
    }
  };

  /** The status document now, and whether it differs from the one last sent. */
  const readStatus = (): { document: unknown; changed: boolean } => {
    const document = deps.status();
    const fingerprint = statusFingerprint(document);
    const changed = lastStatus === null || lastStatus.fingerprint !== fingerprint;
    lastStatus = { document, fingerprint };
    return { document, changed };
  };

  /**
   * A revoked token loses its streams too, not only its next request: each client's token is
   * looked up at every status check (once a second, one indexed read per client).
   */
  const endRevoked = (): void => {
    for (const client of [...clients]) {
      if (client.tokenId === null) continue;
      const token = deps.store.tokens.byId(client.tokenId);
      if (token !== null && token.revokedAt === null) continue;
      const when = token?.revokedAt == null ? "" : ` at ${new Date(token.revokedAt).toISOString()}`;
      client.refuse(
        envelopeOf(
          new HomeostatError(
            "HS_UNAUTHENTICATED",
            `GET /v1/stream: token "${token?.name ?? client.tokenId}" was revoked${when}`,
          ),
        ),
      );
    }
  };

  const checkStatus = (): void => {
    endRevoked();
    let read: { document: unknown; changed: boolean };
    try {
      read = readStatus();
    } catch {
      return; // the controller is stopping; the next check (if any) tries again
    }
    if (!read.changed) return;
    for (const client of clients) client.status(statusFor(read.document, client.service));
  };

  // Timers and the store listener run only while someone listens.
  const startFeeding = (): void => {
    if (unsubscribe !== null) return;
    unsubscribe = deps.store.subscribe(onChange);
    heartbeat = setInterval(() => {
      for (const client of clients) client.heartbeat();
    }, heartbeatMs);
    statusTimer = setInterval(checkStatus, statusIntervalMs);
  };
  const stopFeeding = (): void => {
    unsubscribe?.();
    unsubscribe = null;
    if (heartbeat !== null) clearInterval(heartbeat);
    if (statusTimer !== null) clearInterval(statusTimer);
    heartbeat = null;
    statusTimer = null;
    lastStatus = null;
  };

  // An open stream would keep `app.close()` waiting for ever: end them first.
  app.addHook("preClose", async () => {
    for (const client of [...clients]) client.close();
    stopFeeding();
  });

  route(app, {
    method: "GET",
    url: "/v1/stream",
    summary: "Live events, incident changes and status as Server-Sent Events (resume with Last-Event-ID)",
    tag: "fleet",
    access: "viewer",
    query: streamQuery,
    responses: {
      200: {
        description:
          "text/event-stream: `event` (id e<seq>), `incident`, `status` frames, heartbeat comments, a final `reset` for a client too far behind",
        schema: z.string(),
        contentType: "text/event-stream",
      },
    },
    handler: ({ query, request, reply }) => {
      const header = request.headers["last-event-id"];
      let after: number | null = query.after ?? null;
      if (typeof header === "string" && header.trim() !== "") {
        after = parseEventId(header);
        if (after === null) {
          throw new HomeostatError(
            "HS_BAD_REQUEST",
            `Last-Event-ID must be an event id like "e42", got ${JSON.stringify(header)}`,
            { details: { in: "headers", lastEventId: header } },
          );
        }
      }
      if (clients.size >= maxClients) {
        throw new HomeostatError(
          "HS_TOO_MANY_STREAMS",
          `${clients.size} event streams are open, the most this controller serves at once: close one (a dashboard tab, an \`events --follow\`) or poll GET /v1/events`,
          { details: { open: clients.size, max: maxClients } },
        );
      }
      reply.hijack();
      startFeeding();
      const client = new StreamClient(reply.raw, {
        store: deps.store,
        service: query.service,
        tokenId: principalOf(request).tokenId,
        after,
        maxQueuedBytes,
        pageSize,
        onClosed: (gone) => {
          if (!clients.delete(gone)) return;
          deps.controllerMetrics?.streamClients(-1);
          if (clients.size === 0) stopFeeding();
        },
      });
      clients.add(client);
      deps.controllerMetrics?.streamClients(1);
      // The current status first (so a client never waits a second for a picture), then the replay.
      try {
        client.status(statusFor(deps.status(), query.service));
      } catch {
        // no status yet (the controller is starting or stopping): the next change sends it
      }
      client.open();
    },
  });
}
