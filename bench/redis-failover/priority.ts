/**
 * CPU priority for every process of the bench, contenders alike: on a 2-CPU machine shared with
 * other sessions' builds and test suites, a write due every 2 ms and a probe due every 250 ms are
 * otherwise scheduled behind whoever else is busy, and the figures measure the neighbours. The
 * bench and all its descendants (the writer, the redis-servers and Sentinels, Homeostat's
 * controller, its data plane and its members) get the same `nice` value, and so does each one's
 * autogroup (Linux groups a session's processes, and a process started in a session of its own,
 * as Homeostat starts its members, would otherwise compete as a group of its own at nice 0).
 * Needs root (CAP_SYS_NICE); without it the bench runs unboosted and says so.
 */

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";

/** The bench process and every process descended from it, by walking /proc's parent links. */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * Give `nice` to the bench and all its descendants and to their autogroups. Returns how many
 * processes were set, or null when the bench may not raise priorities.
 */
export function boostAll(nice: number): number | null {
  try {
    setPriority(process.pid, nice);
  } catch {
    return null;
  }
  let set = 0;
  for (const pid of descendantsOf(process.pid)) {
    // Every thread: setpriority(2) sets one thread's value (threads started later inherit it).
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of tids) {
      try {
        setPriority(Number(tid), nice);
      } catch {
        // gone meanwhile
      }
    }
    set++;
    try {
      writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    } catch {
      // no autogroups on this kernel, or the process is gone
    }
  }
  return set;
}
