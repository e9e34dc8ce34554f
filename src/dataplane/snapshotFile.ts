/**
 * The data plane's memory across its own restarts: the last snapshot it applied, written
 * atomically (a temporary file renamed over the old one), so a data plane that starts while no
 * controller is up serves with what the last controller wanted. Faults are left out on purpose.
 */

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { type Snapshot, snapshotSchema } from "./feedProtocol.ts";

/** Write `snapshot` without its faults. */
export function persistSnapshot(path: string, snapshot: Snapshot): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify({ ...snapshot, faults: [] })}\n`, { mode: 0o600 });
  renameSync(temporary, path);
}

/** The persisted snapshot; null when there is none. A damaged file is an error with its reason. */
export function readPersistedSnapshot(path: string): { snapshot: Snapshot | null; problem: string | null } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { snapshot: null, problem: null };
    return { snapshot: null, problem: `cannot read ${path}: ${(error as Error).message}` };
  }
  try {
    const parsed = snapshotSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      return {
        snapshot: null,
        problem: `${path} is not a snapshot: ${parsed.error.issues[0]?.message ?? "?"}`,
      };
    }
    return { snapshot: parsed.data, problem: null };
  } catch {
    return { snapshot: null, problem: `${path} is not JSON` };
  }
}
