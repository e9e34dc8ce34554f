/**
 * The fleet file's top-level `notifications` section: webhooks that are told about incidents,
 * rollbacks and failovers (see docs/notifications.md). Its schema lives here and is mounted in
 * `schema.ts`, so its errors carry `file:line:col` like every other section's; `resolveNotifications`
 * fills in the defaults.
 */

import { z } from "zod";
import { DURATION_PATTERN, type DurationInput, durationMs, tryDurationMs } from "./duration.ts";
import { ENV_NAME_PATTERN, expected, NAME_PATTERN, strict } from "./schemaParts.ts";

/** What a webhook can be told. */
export const NOTIFICATION_EVENTS = [
  "incident.opened",
  "incident.escalated",
  "incident.verified",
  "deploy.rolled-back",
  "failover.started",
  "failover.ended",
] as const;

export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

export type WebhookFormat = "slack" | "generic";

/** One webhook, resolved. */
export interface WebhookSpec {
  name: string;
  url: string;
  format: WebhookFormat;
  /** The events it is sent, in the order of {@link NOTIFICATION_EVENTS}. */
  events: NotificationEvent[];
  /** The environment variable holding the signing secret (generic format), never the secret itself. */
  secretEnv: string | null;
  /** Deadline of one delivery attempt. */
  timeoutMs: number;
  /** Attempts per notification, the first included. */
  maxAttempts: number;
}

export interface NotificationsSpec {
  webhooks: WebhookSpec[];
}

/** Defaults of a webhook: every event, 5 s per attempt, 5 attempts. */
export const WEBHOOK_DEFAULTS = { timeoutMs: 5_000, maxAttempts: 5 } as const;

const nameError = expected(
  'a name (lowercase letters, digits and "-", starting with a letter, at most 40 characters)',
);
const urlError = expected("an http:// or https:// URL");
const eventError = expected(`one of ${NOTIFICATION_EVENTS.map((e) => `"${e}"`).join(", ")}`);
const envError = expected("an environment variable name like HOOK_SECRET");
const timeoutError = expected('a positive duration like "500ms" or "5s"');
const attemptsError = expected("an integer from 1 to 20");

const webhookSchema = strict(
  {
    name: z
      .string(nameError)
      .regex(NAME_PATTERN, nameError)
      .describe("Names the webhook in events and metrics."),
    url: z
      .string(urlError)
      .refine((value) => {
        try {
          const url = new URL(value);
          return url.protocol === "http:" || url.protocol === "https:";
        } catch {
          return false;
        }
      }, urlError)
      .describe("Where notifications are POSTed."),
    format: z
      .enum(["slack", "generic"], expected('one of "slack", "generic"'))
      .describe(
        "slack: Slack-compatible { text, blocks }; generic: Homeostat's JSON, signed when secretEnv is set.",
      ),
    events: z
      .array(z.enum(NOTIFICATION_EVENTS, eventError), expected("a list of notification events"))
      .min(1, "list at least one event")
      .optional()
      .describe("What it is told. Default: every notification event."),
    secretEnv: z
      .string(envError)
      .regex(ENV_NAME_PATTERN, envError)
      .optional()
      .describe("Environment variable holding the HMAC-SHA256 signing secret (never the secret itself)."),
    timeout: z
      .union(
        [
          z
            .string(timeoutError)
            .regex(DURATION_PATTERN, timeoutError)
            .refine((value) => (tryDurationMs(value) ?? 1) >= 1, timeoutError),
          z.number(timeoutError).int(timeoutError).min(1, timeoutError),
        ],
        timeoutError,
      )
      .optional()
      .describe("Deadline of one delivery attempt. Default 5s."),
    maxAttempts: z
      .number(attemptsError)
      .int(attemptsError)
      .min(1, attemptsError)
      .max(20, attemptsError)
      .optional()
      .describe("Attempts per notification, the first included, with exponential backoff. Default 5."),
  },
  "a webhook mapping { name, url, format, events?, secretEnv?, timeout?, maxAttempts? }",
);

/** The top-level `notifications` mapping. */
export const notificationsSchema = strict(
  {
    webhooks: z
      .array(webhookSchema, expected("a list of webhooks"))
      .superRefine((hooks, context) => {
        const seen = new Set<string>();
        hooks.forEach((hook, index) => {
          if (typeof hook?.name !== "string") return;
          if (seen.has(hook.name)) {
            context.addIssue({
              code: "custom",
              path: [index, "name"],
              input: hook.name,
              message: `webhook name "${hook.name}" is used twice: names tell webhooks apart in events and metrics`,
            });
          }
          seen.add(hook.name);
        });
      })
      .optional()
      .describe("Webhooks told about incidents, rollbacks and failovers."),
  },
  "a mapping { webhooks }",
);

export type NotificationsInput = z.output<typeof notificationsSchema>;

/** The `notifications` section with every default filled in (no section: no webhooks). */
export function resolveNotifications(input: NotificationsInput | undefined): NotificationsSpec {
  return {
    webhooks: (input?.webhooks ?? []).map((hook) => {
      const wanted = new Set(hook.events ?? NOTIFICATION_EVENTS);
      return {
        name: hook.name,
        url: hook.url,
        format: hook.format,
        events: NOTIFICATION_EVENTS.filter((event) => wanted.has(event)),
        secretEnv: hook.secretEnv ?? null,
        timeoutMs:
          hook.timeout === undefined ? WEBHOOK_DEFAULTS.timeoutMs : durationMs(hook.timeout as DurationInput),
        maxAttempts: hook.maxAttempts ?? WEBHOOK_DEFAULTS.maxAttempts,
      };
    }),
  };
}
