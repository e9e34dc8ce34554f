/**
 * Which code was measured: in a working tree shared with people editing `src/`, the commit alone
 * does not say. The hash of the uncommitted diff (src/, bin/, examples/) pins it.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";

export interface CodeState {
  commit: string | null;
  /** SHA-256 of `git diff HEAD -- src bin examples` (of "" when clean). */
  diffSha256: string | null;
  /** Files with uncommitted changes under src/, bin/ or examples/. */
  changedFiles: string[];
}

export function codeState(repo: string): CodeState {
  const git = (args: string[]) =>
    execFileSync("git", ["--no-optional-locks", ...args], {
      cwd: repo,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      maxBuffer: 64 * 1024 * 1024,
    });
  try {
    const diff = git(["diff", "HEAD", "--", "src", "bin", "examples"]);
    return {
      commit: git(["rev-parse", "HEAD"]).trim(),
      diffSha256: createHash("sha256").update(diff).digest("hex"),
      changedFiles: git(["diff", "HEAD", "--name-only", "--", "src", "bin", "examples"])
        .split("\n")
        .filter((line) => line !== ""),
    };
  } catch {
    return { commit: null, diffSha256: null, changedFiles: [] };
  }
}
