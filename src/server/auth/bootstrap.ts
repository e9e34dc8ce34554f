/**
 * The first admin token: `homeostat up` makes sure the state directory holds a usable one in
 * `<stateDir>/admin-token` (owner-only), so that the CLI on the same machine just works.
 */

import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TokenStore } from "../../store/index.ts";
import { hashToken, issueToken, TOKEN_PATTERN } from "./tokens.ts";

/** File name of the admin token inside the state directory. */
export const ADMIN_TOKEN_FILE = "admin-token";

/** Who created the first admin token, as `tokens.created_by` shows it. */
export const BOOTSTRAP_CREATOR = "homeostat up";

export interface AdminTokenFile {
  /** Absolute path of `<stateDir>/admin-token`. */
  file: string;
  /**
   * `created`: there was no live admin token, one named "admin" was made; `replaced`: the file was
   * gone, so the "admin" token it held (lost with it) was revoked and a new one written; `kept`:
   * the file holds a live admin token; `unusable`: the file is missing or holds a revoked token
   * while other admin tokens live (they were made on purpose; nothing is created behind them).
   */
  state: "created" | "replaced" | "kept" | "unusable";
}

function readSecret(file: string): string | null {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
}

/** Writes `secret` to `file`, mode 0600, atomically (a reader never sees half a token). */
function writeSecret(file: string, secret: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${secret}\n`, { mode: 0o600, flag: "w" });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}

/**
 * Makes `<stateDir>/admin-token` hold a live admin token when it can (see
 * {@link AdminTokenFile.state}), and the state directory owner-only (0700).
 */
export function ensureAdminToken(tokens: TokenStore, stateDir: string, at: number): AdminTokenFile {
  chmodSync(stateDir, 0o700);
  const file = join(stateDir, ADMIN_TOKEN_FILE);
  const secret = readSecret(file);
  if (secret !== null && TOKEN_PATTERN.test(secret)) {
    const held = tokens.byHash(hashToken(secret));
    if (held !== null && held.role === "admin") {
      chmodSync(file, 0o600);
      return { file, state: "kept" };
    }
  }
  const create = (state: "created" | "replaced"): AdminTokenFile => {
    const name = tokens.live("admin") === null ? "admin" : `admin-${at}`;
    const issued = issueToken(tokens, { name, role: "admin", createdBy: BOOTSTRAP_CREATOR, at });
    writeSecret(file, issued.secret);
    return { file, state };
  };
  if (tokens.countLive("admin") === 0) return create("created");
  const previous = tokens.live("admin");
  if (!existsSync(file) && previous !== null && previous.createdBy === BOOTSTRAP_CREATOR) {
    tokens.revoke(previous.id, at);
    return create("replaced");
  }
  return { file, state: "unusable" };
}
