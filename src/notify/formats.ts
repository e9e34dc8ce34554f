/**
 * How a notification is written on the wire: Slack-compatible (`{ text, blocks }`, what a Slack
 * incoming webhook and most chat bridges take) or Homeostat's generic JSON, and the HMAC-SHA256
 * signature a receiver checks (`x-homeostat-signature: t=<unix s>,v1=<hex>` over `${t}.${body}`).
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import type { WebhookFormat } from "../spec/notifications.ts";
import type { Notification } from "./notification.ts";

/** The header carrying the signature. */
export const SIGNATURE_HEADER = "x-homeostat-signature";
/** The header carrying the notification id (the same on every retry). */
export const DELIVERY_HEADER = "x-homeostat-notification";

/** The generic format: the notification as JSON, `at` as an ISO 8601 time. */
export function genericPayload(n: Notification): Record<string, unknown> {
  return {
    id: n.id,
    type: n.type,
    at: new Date(n.at).toISOString(),
    fleet: n.fleet,
    ...(n.service === undefined ? {} : { service: n.service }),
    ...(n.incident === undefined ? {} : { incident: n.incident }),
    reason: n.reason,
    message: n.message,
    data: n.data,
  };
}

const HEADLINE: Record<Notification["type"], string> = {
  "incident.opened": ":rotating_light: Incident opened",
  "incident.escalated": ":fire: Incident escalated",
  "incident.verified": ":white_check_mark: Recovery verified",
  "deploy.rolled-back": ":leftwards_arrow_with_hook: Deploy rolled back",
  "failover.started": ":twisted_rightwards_arrows: Failover started",
  "failover.ended": ":arrows_counterclockwise: Failover ended",
};

/** The Slack format: `text` (the fallback every client shows) and Block Kit `blocks`. */
export function slackPayload(n: Notification): { text: string; blocks: unknown[] } {
  const where = n.service === undefined ? n.fleet : `${n.fleet}/${n.service}`;
  const text = `${HEADLINE[n.type]} [${where}]: ${n.message}`;
  const context = [
    `reason \`${n.reason}\``,
    ...(n.incident === undefined ? [] : [`incident #${n.incident.id}`]),
    `<!date^${Math.floor(n.at / 1000)}^{date_short_pretty} {time_secs}|${new Date(n.at).toISOString()}>`,
  ].join(" · ");
  return {
    text,
    blocks: [
      {
        type: "section",
        text: {
          type: "mrkdwn",
          text: `*${HEADLINE[n.type]}* [${escapeMrkdwn(where)}]\n${escapeMrkdwn(n.message)}`,
        },
      },
      { type: "context", elements: [{ type: "mrkdwn", text: context }] },
    ],
  };
}

/** Slack mrkdwn treats `&`, `<` and `>` as control characters. */
function escapeMrkdwn(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** The request body for `format`. */
export function bodyFor(format: WebhookFormat, n: Notification): string {
  return JSON.stringify(format === "slack" ? slackPayload(n) : genericPayload(n));
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "${t}.${body}">`. */
export function signature(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/**
 * A receiver's check: the header is well formed, its MAC matches (in constant time) and its time
 * is within `toleranceS` of `nowS` (a replayed old request fails).
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string,
  nowS: number,
  toleranceS = 300,
): boolean {
  const parts = new Map(
    header.split(",").map((part) => {
      const at = part.indexOf("=");
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1");
  if (!Number.isInteger(t) || v1 === undefined || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(nowS - t) > toleranceS) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, "hex"));
}
