/**
 * What of a request the audit trail may keep: token secrets never, wherever they appear (a key
 * named like a secret, or a string that looks like a token), and not more than a few KiB of body.
 */

import { printable } from "../../lib/printable.ts";
import { TOKEN_IN_TEXT } from "./tokens.ts";

/** Keys whose values are secrets whatever they look like. */
const SECRET_KEYS = /^(token|secret|password|authorization|api[-_]?key)$/i;

/** Bodies above this many characters of JSON are recorded as their size only. */
export const MAX_AUDIT_BODY_CHARS = 16_384;

export const REDACTED = "[redacted]";

/** `text` with every token secret in it replaced, and deceptive characters written as escapes (`\n`, `\u001b`). */
export function redactText(text: string): string {
  return printable(text.replace(TOKEN_IN_TEXT, `hs_${REDACTED}`));
}

/** A copy of `value` without secrets (see the module comment). */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === "string") return redactText(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        redactText(key),
        SECRET_KEYS.test(key) ? REDACTED : redactSecrets(inner),
      ]),
    );
  }
  return value;
}

/** The body as the audit trail keeps it: redacted, or its size when it is too large to keep. */
export function auditableBody(body: unknown): unknown {
  if (body === undefined || body === null) return null;
  const redacted = redactSecrets(body);
  const text = JSON.stringify(redacted) ?? "";
  return text.length > MAX_AUDIT_BODY_CHARS ? { truncated: true, chars: text.length } : redacted;
}
