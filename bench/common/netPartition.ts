/**
 * Real network faults for benches and tests: nftables rules that cut the loopback traffic to and
 * from a set of TCP ports (one zone's instances). Every packet to those ports, and every packet
 * from them, is dropped (a blackhole: connects and in-flight requests hang until someone's timeout)
 * or answered with a TCP reset (a refused zone). Probes, proxies and clients all cross the same
 * rules, so a fault is seen by whoever touches the network, and by nothing else.
 *
 * Each partition is its own nftables table named `homeostat_fault_<pid>_<n>`, so removing it never
 * touches anyone else's rules, and {@link healOrphanedPartitions} can remove the tables of a bench
 * or test that died before it healed its own.
 */

import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const TABLE_PREFIX = "homeostat_fault_";

/** What happens to a packet that crosses the cut. */
export type PartitionKind = "blackhole" | "reject";

export interface NetPartition {
  readonly table: string;
  readonly ports: readonly number[];
  readonly kind: PartitionKind;
  /** Remove the rules (idempotent). In-flight connections resume with TCP's next retransmission. */
  heal(): Promise<void>;
}

let partitions = 0;

async function nft(args: string[], input?: string): Promise<string> {
  if (input === undefined) return (await run("nft", args)).stdout;
  return new Promise((resolve, reject) => {
    const child = execFile("nft", args, (error, stdout, stderr) => {
      if (error) reject(new Error(`nft ${args.join(" ")}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

/**
 * Why real network faults cannot be made here, or null when they can: nftables needs root and the
 * `nft` command (Debian: `apt-get install -y nftables`).
 */
export async function netPartitionUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0) return "real network faults need root (nftables rules)";
  try {
    await run("nft", ["--version"]);
  } catch {
    return "the nft command is missing (Debian: apt-get install -y nftables)";
  }
  return null;
}

/**
 * Cut the loopback network to and from `ports`.
 * @throws when nftables refuses the rules (not root, no `nft`, a kernel without nf_tables)
 */
export async function partitionPorts(
  ports: readonly number[],
  kind: PartitionKind = "blackhole",
): Promise<NetPartition> {
  if (ports.length === 0) throw new Error("partitionPorts: no ports to cut");
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new Error(`partitionPorts: bad port ${port}`);
  }
  const table = `${TABLE_PREFIX}${process.pid}_${++partitions}`;
  const set = ports.join(", ");
  // Output hook: on loopback both directions are sent locally, so one chain sees every packet.
  // A reject resets every packet towards the ports and lets their side through: the reset it sends
  // appears to come from the port, so dropping that side would swallow it.
  const rules =
    kind === "reject"
      ? [`    tcp dport { ${set} } reject with tcp reset`]
      : [`    tcp dport { ${set} } drop`, `    tcp sport { ${set} } drop`];
  const script = [
    `table inet ${table} {`,
    "  chain output {",
    "    type filter hook output priority -10; policy accept;",
    ...rules,
    "  }",
    "}",
    "",
  ].join("\n");
  await nft(["-f", "-"], script);
  let healed: Promise<void> | null = null;
  return {
    table,
    ports: [...ports],
    kind,
    heal: () => {
      healed ??= nft(["delete", "table", "inet", table]).then(
        () => undefined,
        (error: unknown) => {
          if (!/No such file or directory/.test(String(error))) throw error;
        },
      );
      return healed;
    },
  };
}

/** The tables of partitions whose process is gone, removed; returns their names. */
export async function healOrphanedPartitions(): Promise<string[]> {
  const listing = await nft(["list", "tables"]);
  const removed: string[] = [];
  for (const match of listing.matchAll(/^table inet (homeostat_fault_(\d+)_\d+)$/gm)) {
    const [, table, pid] = match;
    if (table === undefined || pid === undefined || processAlive(Number(pid))) continue;
    await nft(["delete", "table", "inet", table]);
    removed.push(table);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
