/**
 * API token secrets: `hs_` and 32 random bytes in base64url (43 characters). Only their sha256 is
 * stored: the secret is random with 256 bits of entropy, so a fast unsalted hash is enough (no
 * dictionary to try), and a lookup by hash costs one indexed read per request.
 */

import { createHash, randomBytes } from "node:crypto";
import { HomeostatError } from "../../errors.ts";
import type { TokenRecord, TokenStore } from "../../store/index.ts";
import type { Role } from "../route.ts";

/** What a token secret looks like; anything else is refused without a database read. */
export const TOKEN_PATTERN: RegExp = /^hs_[A-Za-z0-9_-]{43}$/;

/** Token secrets found inside free text (audit bodies, reasons): they are never stored. */
export const TOKEN_IN_TEXT: RegExp = /hs_[A-Za-z0-9_-]{43}/g;

/** The roles, weakest first. */
export const ROLES: readonly Role[] = ["viewer", "operator", "admin"];

/** A new random token secret. */
export function newTokenSecret(): string {
  return `hs_${randomBytes(32).toString("base64url")}`;
}

/** The hex sha256 of a secret, as stored. */
export function hashToken(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Names are for people and the audit trail: short, printable, no spaces. */
export const TOKEN_NAME_PATTERN: RegExp = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/**
 * Creates a token and returns it with its secret (the only time the secret exists outside the
 * caller's hands).
 *
 * @throws HomeostatError HS_BAD_REQUEST for a malformed name, HS_CONFLICT when a live token has it.
 */
export function issueToken(
  tokens: TokenStore,
  request: { name: string; role: Role; createdBy: string; at: number },
): { token: TokenRecord; secret: string } {
  if (!TOKEN_NAME_PATTERN.test(request.name)) {
    throw new HomeostatError(
      "HS_BAD_REQUEST",
      `token name ${JSON.stringify(request.name)}: use 1-64 letters, digits and . _ @ -, starting with a letter or digit`,
    );
  }
  const secret = newTokenSecret();
  const token = tokens.insert({
    name: request.name,
    role: request.role,
    hash: hashToken(secret),
    createdBy: request.createdBy,
    at: request.at,
  });
  if (token === null) {
    throw new HomeostatError(
      "HS_CONFLICT",
      `a live token is already named "${request.name}": pick another name, or revoke it first`,
      { details: { name: request.name } },
    );
  }
  return { token, secret };
}
