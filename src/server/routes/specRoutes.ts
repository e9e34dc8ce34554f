/**
 * Spec revisions: the applied fleet file (`GET /v1/spec`, what `homeostat diff` compares a file
 * with) and the history of every revision (`GET /v1/revisions`, `GET /v1/revisions/:number`).
 * Readers only: applying a revision is `POST /v1/apply` (applyRoutes.ts).
 */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import { type FleetDiff, summarizeDiff } from "../../spec/diff.ts";
import type { SpecRevision } from "../../store/index.ts";
import type { ApiDeps } from "../api.ts";
import { route } from "../route.ts";

const epochMs = z.number().int().describe("epoch milliseconds");

const specChangeSchema = z
  .object({
    service: z.string().nullable().describe("null for a fleet-wide setting"),
    path: z
      .string()
      .describe("dotted path in the resolved fleet, e.g. services.api.traffic.retries.maxAttempts"),
    class: z.enum([
      "live",
      "replace",
      "scale",
      "add-service",
      "remove-service",
      "release-switch",
      "release-edited",
      "release-added",
      "release-removed",
    ]),
    before: z.unknown().optional(),
    after: z.unknown().optional(),
    detail: z.string(),
  })
  .meta({ id: "SpecChange" });

/** A revision without its text and spec: one line of history. */
export const revisionSummarySchema = z
  .object({
    number: z.number().int().min(1),
    hash: z.string().describe("sha256 (hex) of the file text"),
    file: z.string(),
    who: z.string().describe('the token name that applied it, or "homeostat up"'),
    reason: z.string().nullable(),
    at: epochMs,
    state: z.enum(["applying", "applied", "failed"]),
    settledAt: epochMs.nullable(),
    error: z.string().nullable(),
    summary: z.string().describe('its diff from the revision before, by class: "1 scale, 2 live"'),
  })
  .meta({ id: "SpecRevisionSummary" });

/** A whole revision: the summary, the file's text, the resolved spec and the diff. */
export const revisionSchema = revisionSummarySchema
  .extend({
    text: z.string().describe("the fleet file's full text"),
    spec: z.unknown().describe("the resolved fleet"),
    diff: z
      .object({ changes: z.array(specChangeSchema), empty: z.boolean() })
      .nullable()
      .describe("from the revision applied before it; null for the first"),
  })
  .meta({ id: "SpecRevision" });

/** The applied spec: the newest applied revision. */
export const appliedSpecSchema = z
  .object({
    revision: z.number().int().min(1),
    hash: z.string(),
    file: z.string(),
    text: z.string(),
    spec: z.unknown().describe("the resolved fleet (what `homeostat diff` compares a file with)"),
    at: epochMs,
    who: z.string(),
  })
  .meta({ id: "AppliedSpec" });

/** The diff a revision stored, parsed; null for the first revision. */
export function diffOf(revision: SpecRevision): FleetDiff | null {
  return revision.diffJson === null ? null : (JSON.parse(revision.diffJson) as FleetDiff);
}

/** One line of history for `revision`. */
export function revisionSummary(revision: SpecRevision): z.infer<typeof revisionSummarySchema> {
  const diff = diffOf(revision);
  return {
    number: revision.number,
    hash: revision.contentHash,
    file: revision.file,
    who: revision.who,
    reason: revision.reason,
    at: revision.at,
    state: revision.state,
    settledAt: revision.settledAt,
    error: revision.error,
    summary: diff === null ? "first revision" : summarizeDiff(diff),
  };
}

/** Declares the spec revision routes on `app`. */
export function specRoutes(app: FastifyInstance, deps: ApiDeps): void {
  route(app, {
    method: "GET",
    url: "/v1/spec",
    summary: "The applied fleet file: revision number, content hash, path, full text and resolved spec",
    tag: "spec",
    access: "viewer",
    responses: { 200: { description: "the applied revision", schema: appliedSpecSchema } },
    handler: () => {
      const applied = deps.store.revisions.latestApplied();
      if (applied === null) throw new HomeostatError("HS_NOT_FOUND", "no spec revision is applied yet");
      return {
        revision: applied.number,
        hash: applied.contentHash,
        file: applied.file,
        text: applied.text,
        spec: JSON.parse(applied.specJson) as unknown,
        at: applied.at,
        who: applied.who,
      };
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/revisions",
    summary: "Spec revisions, newest first: who, when, why, state and a summary of each diff",
    tag: "spec",
    access: "viewer",
    query: z.object({ limit: z.coerce.number().int().min(1).max(10_000).default(100) }).strict(),
    responses: {
      200: {
        description: "the history",
        schema: z.object({ revisions: z.array(revisionSummarySchema) }),
      },
    },
    handler: ({ query }) => ({
      revisions: deps.store.revisions.list({ limit: query.limit }).map(revisionSummary),
    }),
  });

  route(app, {
    method: "GET",
    url: "/v1/revisions/:number",
    summary: "One spec revision: its file text, resolved spec and diff",
    tag: "spec",
    access: "viewer",
    params: z.object({ number: z.coerce.number().int().min(1) }).strict(),
    responses: { 200: { description: "the revision", schema: revisionSchema } },
    handler: ({ params }) => {
      const revision = deps.store.revisions.get(params.number);
      if (revision === null) {
        throw new HomeostatError("HS_NOT_FOUND", `no spec revision ${params.number}`, {
          details: { revision: params.number },
        });
      }
      return {
        ...revisionSummary(revision),
        text: revision.text,
        spec: JSON.parse(revision.specJson) as unknown,
        diff: diffOf(revision),
      };
    },
  });
}
