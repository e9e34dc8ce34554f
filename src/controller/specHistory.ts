/**
 * The controller's side of spec revisions: revision 1 at `up`, and the drift between the applied
 * revision and the fleet file on disk that the status document reports (`spec`).
 */

import { readFileSync, statSync } from "node:fs";
import { diffFleets } from "../spec/diff.ts";
import { parseFleet } from "../spec/loadFleet.ts";
import type { FleetSpec } from "../spec/model.ts";
import { recordFirstRevision, type SpecRevision, type StateStore, specContentHash } from "../store/index.ts";

/** The fleet file on disk compared with the applied revision's text. */
export type FileOnDisk = "same" | "differs" | "missing" | "unreadable";

/** The status document's `spec` field. */
export interface SpecStatus {
  /** The applied revision's number. */
  revision: number;
  /** Its content hash (sha256 of the file text). */
  hash: string;
  /** The file it was read from. */
  file: string;
  at: number;
  who: string;
  /** How the file at `file` compares now. */
  fileOnDisk: FileOnDisk;
  /** The hash of the file on disk now (null when it cannot be read). */
  fileHash: string | null;
  /** A newer revision still being applied (its number), or null. */
  applying: number | null;
}

/**
 * Records what `up` brings the fleet up with. Revision 1 when the state directory has none yet; a
 * new revision when the file differs from the applied one (edited while no controller ran: `up`
 * runs it, its release changes through the progressive deploy, so it must not be left looking like
 * drift against an older revision), with the diff and who: "homeostat up". Nothing while a revision
 * is still being applied (that one is resumed and wins over the file), nor when the file edits a
 * release definition under its recorded name (`editedReleases` > 0): `up` keeps running the
 * recorded definition, so the file is not what runs: it stays drift until `homeostat apply`. The text is read from the
 * fleet's file now (`fleet` was resolved from it a moment ago by `up`; a file rewritten in between
 * is caught by the drift check, since the revision keeps what was read here). A fleet with no
 * readable file (one built by hand in a test) records nothing. Returns the revision recorded, or null.
 */
export function recordUpRevision(
  store: StateStore,
  fleet: FleetSpec,
  at: number,
  editedReleases = 0,
): SpecRevision | null {
  let text: string;
  try {
    text = readFileSync(fleet.file, "utf8");
  } catch {
    return null;
  }
  const first = recordFirstRevision(store.revisions, {
    file: fleet.file,
    text,
    specJson: JSON.stringify(fleet),
    at,
  });
  if (first !== null) return first;
  if (store.revisions.pending() !== null || editedReleases > 0) return null;
  const applied = store.revisions.latestApplied();
  if (applied === null || applied.contentHash === specContentHash(text)) return null;
  const before = parseFleet(applied.text, applied.file);
  const diff = before.ok ? diffFleets(before.fleet, fleet) : null;
  return store.revisions.record({
    file: fleet.file,
    text,
    specJson: JSON.stringify(fleet),
    diffJson: diff === null ? null : JSON.stringify(diff),
    who: "homeostat up",
    reason: `the fleet file changed since revision ${applied.number} while no controller ran; brought up with it`,
    at,
    state: "applied",
  });
}

/**
 * Compares the applied revision with its file on disk, for each status document. Cheap: the file
 * is hashed again only when its size or modification time changed since the last look.
 */
export class SpecDriftCheck {
  readonly #store: StateStore;
  #seen: { file: string; size: number; mtimeMs: number; hash: string } | null = null;

  constructor(store: StateStore) {
    this.#store = store;
  }

  /** The `spec` field, or undefined when no revision is applied (a state dir from before revisions, a test fleet). */
  status(): SpecStatus | undefined {
    const applied = this.#store.revisions.latestApplied();
    if (applied === null) return undefined;
    const pending = this.#store.revisions.pending();
    const disk = this.#hashOnDisk(applied.file);
    return {
      revision: applied.number,
      hash: applied.contentHash,
      file: applied.file,
      at: applied.at,
      who: applied.who,
      fileOnDisk: typeof disk === "string" ? (disk === applied.contentHash ? "same" : "differs") : disk.state,
      fileHash: typeof disk === "string" ? disk : null,
      applying: pending !== null && pending.number > applied.number ? pending.number : null,
    };
  }

  #hashOnDisk(file: string): string | { state: "missing" | "unreadable" } {
    try {
      const stat = statSync(file);
      const seen = this.#seen;
      if (seen?.file === file && seen.size === stat.size && seen.mtimeMs === stat.mtimeMs) return seen.hash;
      const hash = specContentHash(readFileSync(file, "utf8"));
      this.#seen = { file, size: stat.size, mtimeMs: stat.mtimeMs, hash };
      return hash;
    } catch (error) {
      this.#seen = null;
      const code = (error as NodeJS.ErrnoException).code;
      return { state: code === "ENOENT" || code === "ENOTDIR" ? "missing" : "unreadable" };
    }
  }
}
