/**
 * Which processes listen on a TCP port (Linux): `/proc/net/tcp` and `/proc/net/tcp6` give the
 * listening sockets' inodes, `/proc/<pid>/fd/*` links (`socket:[inode]`) give their holders,
 * `/proc/<pid>/stat` their process groups. Only listeners a connection to 127.0.0.1:PORT can
 * reach count (127.0.0.1, 0.0.0.0, ::, ::ffff:127.0.0.1), which are also the ones that keep an
 * instance from binding 127.0.0.1:PORT. Runs in the controller's network namespace, the one its
 * probes and the data plane connect from.
 *
 * Cost: two small table reads when nobody listens; otherwise a walk of `/proc/<pid>/fd`, first
 * over the expected process group only. Callers use it before a start and when an instance is
 * about to be marked ready, not on every probe. Descriptors of other users' processes cannot be
 * read (EACCES): their sockets are counted as `unattributed`, never guessed.
 */

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { endianness } from "node:os";
import { processesInGroup, processGroupOf } from "../../lib/procStat.ts";
import type { PortHolder, PortOwnership } from "../../observe/portIdentity.ts";

const LISTEN = "0A";
const REACHABLE = new Set(["127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1"]);
const COMMAND_MAX = 160;

/**
 * Decode a `/proc/net/tcp{,6}` address (`0100007F` or 32 hex digits): words of 4 bytes, each in
 * the host's byte order. IPv6 is written uncompressed except for the forms matched above.
 */
export function decodeProcAddress(hex: string, littleEndian = endianness() === "LE"): string | null {
  if (!/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) return null;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join(".");
  if (bytes.every((b) => b === 0)) return "::";
  const v4mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (v4mapped) return `::ffff:${bytes.slice(12).join(".")}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(":");
}

/**
 * Inodes of the listening sockets on `port` that 127.0.0.1 reaches, from the text of
 * `/proc/net/tcp` or `/proc/net/tcp6`. Lines that do not parse are skipped.
 */
export function listeningInodes(table: string, port: number, littleEndian?: boolean): string[] {
  const inodes: string[] = [];
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
    const [local, state, inode] = [fields[1], fields[3], fields[9]];
    if (local === undefined || state !== LISTEN || inode === undefined || inode === "0") continue;
    const colon = local.lastIndexOf(":");
    if (colon < 0 || Number.parseInt(local.slice(colon + 1), 16) !== port) continue;
    const address = decodeProcAddress(local.slice(0, colon), littleEndian);
    if (address !== null && REACHABLE.has(address)) inodes.push(inode);
  }
  return inodes;
}

/** The inode of a `/proc/<pid>/fd/N` link target (`socket:[12345]`), or null for anything else. */
export function socketInode(link: string): string | null {
  const match = /^socket:\[(\d+)\]$/.exec(link);
  return match?.[1] ?? null;
}

/** A `/proc/<pid>/cmdline` (NUL-separated) as one shortened line, or null when empty (a kernel thread, a zombie). */
export function commandLine(raw: string): string | null {
  const text = raw.replace(/\0+$/, "").split("\0").join(" ").trim();
  if (text === "") return null;
  return text.length > COMMAND_MAX ? `${text.slice(0, COMMAND_MAX - 1)}…` : text;
}

/** Reads `/proc`; a separate object so tests can point it at fixture text. */
export interface ProcReader {
  netTables(): string[] | null;
  pids(): number[];
  fdLinks(pid: number): string[] | "unreadable";
  group(pid: number): number | null;
  groupMembers(pgid: number): number[];
  cmdline(pid: number): string | null;
}

export const linuxProc: ProcReader = {
  netTables() {
    const tables: string[] = [];
    for (const path of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      try {
        tables.push(readFileSync(path, "latin1"));
      } catch {
        // tcp6 is missing on kernels without IPv6; both missing means no /proc at all.
      }
    }
    return tables.length === 0 ? null : tables;
  },
  pids() {
    try {
      return readdirSync("/proc")
        .map(Number)
        .filter((pid) => Number.isInteger(pid) && pid > 0);
    } catch {
      return [];
    }
  },
  fdLinks(pid) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Gone meanwhile: nothing held. Not ours to read: say so.
      return code === "EACCES" || code === "EPERM" ? "unreadable" : [];
    }
    const links: string[] = [];
    for (const fd of fds) {
      try {
        links.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        // closed meanwhile
      }
    }
    return links;
  },
  group: processGroupOf,
  groupMembers: processesInGroup,
  cmdline(pid) {
    try {
      return commandLine(readFileSync(`/proc/${pid}/cmdline`, "latin1"));
    } catch {
      return null;
    }
  },
};

/**
 * Who listens on `port` (reachable at 127.0.0.1). With `preferGroup`, that group's processes are
 * searched first and the walk stops there if they hold every listener.
 */
export function findPortOwners(
  port: number,
  options: { preferGroup?: number; proc?: ProcReader } = {},
): PortOwnership {
  const proc = options.proc ?? linuxProc;
  const tables = proc.netTables();
  if (tables === null) return { kind: "unavailable", reason: "cannot read /proc/net/tcp" };
  const wanted = new Set(tables.flatMap((table) => listeningInodes(table, port)));
  if (wanted.size === 0) return { kind: "free" };

  const holders = new Map<number, PortHolder>();
  const found = new Set<string>();
  let unreadable = false;
  const search = (pids: Iterable<number>): void => {
    for (const pid of pids) {
      if (found.size === wanted.size) return;
      if (holders.has(pid)) continue;
      const links = proc.fdLinks(pid);
      if (links === "unreadable") {
        unreadable = true;
        continue;
      }
      for (const link of links) {
        const inode = socketInode(link);
        if (inode === null || !wanted.has(inode)) continue;
        found.add(inode);
        if (!holders.has(pid)) {
          holders.set(pid, { pid, pgid: proc.group(pid), command: proc.cmdline(pid) ?? "(unknown)" });
        }
      }
    }
  };
  if (options.preferGroup !== undefined) search(proc.groupMembers(options.preferGroup));
  if (found.size < wanted.size) search(proc.pids());
  // Sockets nobody was seen holding while every process was readable closed between the reads.
  const unattributed = unreadable ? wanted.size - found.size : 0;
  if (holders.size === 0 && unattributed === 0) return { kind: "free" };
  return { kind: "held", holders: [...holders.values()], unattributed };
}
