/** The automation brakes as the API answers them (`GET /v1/brakes`, `status.brakes`). */

import { z } from "zod";

export const pauseSchema = z
  .object({
    by: z.string().describe("the token name that paused"),
    reason: z.string(),
    since: z.number().int().describe("epoch ms"),
  })
  .describe("who paused automation, why, and since when");

const windowSchema = z.object({
  used: z.number().int(),
  max: z.number().int(),
  windowMs: z.number().int(),
  freeAt: z.number().nullable().describe("when one more is allowed (null: now)"),
});

/** `GET /v1/brakes` and the `brakes` part of the status document. */
export const brakesStatusSchema = z.looseObject({
  paused: pauseSchema.nullable(),
  usage: z.looseObject({
    services: z.array(
      z.looseObject({
        service: z.string(),
        restarts: windowSchema,
        actedOn: z.looseObject({
          instances: z.array(z.string()),
          limit: z.number().int(),
          share: z.number(),
          size: z.number().int(),
        }),
      }),
    ),
    fleet: z.looseObject({
      actedOn: z.looseObject({
        count: z.number().int(),
        limit: z.number().int(),
        share: z.number(),
        size: z.number().int(),
      }),
      rollbacks: windowSchema,
      failovers: windowSchema,
    }),
  }),
  held: z.array(
    z.looseObject({
      kind: z.enum(["restart", "rollback", "failover"]),
      target: z.string(),
      service: z.string().nullable(),
      rule: z.string(),
      reason: z.object({ code: z.string(), message: z.string() }),
      since: z.number(),
      until: z.number().nullable(),
    }),
  ),
});

/** The brakes part of the status document, as the CLI and the dashboard read it. */
export type BrakesStatusAnswer = z.infer<typeof brakesStatusSchema>;
