import type { Problem } from "./problem.ts";
import type { PathSegment } from "./yamlSource.ts";

/** The part of a service that port rules look at. */
export interface PortNode {
  name: string;
  replicas: number;
  basePort: number;
  port?: number | undefined;
}

interface PortUse {
  service: string;
  kind: "instances" | "front";
  low: number;
  high: number;
  path: PathSegment[];
}

/** Instance ports a service reserves per replica: two banks, so a new release can start beside the running one. */
export const PORT_BANKS = 2;

/**
 * Instance port ranges (`basePort .. basePort + 2 × replicas - 1`: both banks) must fit below
 * 65536, and no two uses of a port may overlap across the fleet (ranges and front `port`s alike).
 * A clash is reported at the later `basePort`/`port`, naming the service that had the port first.
 */
export function checkPorts(nodes: readonly PortNode[]): Problem[] {
  const problems: Problem[] = [];
  const uses: PortUse[] = [];
  for (const node of nodes) {
    const servicePath = ["services", node.name];
    const high = node.basePort + PORT_BANKS * node.replicas - 1;
    const instances: PortUse = {
      service: node.name,
      kind: "instances",
      low: node.basePort,
      high: Math.min(high, 65535),
      path: [...servicePath, "basePort"],
    };
    if (high > 65535) {
      problems.push({
        path: instances.path,
        target: "value",
        message: `instance ports ${node.basePort}-${high} (${node.replicas} replicas × ${PORT_BANKS} banks) go past 65535${BANKS_WHY}`,
      });
    }
    const mine: PortUse[] = [instances];
    if (node.port !== undefined) {
      mine.push({
        service: node.name,
        kind: "front",
        low: node.port,
        high: node.port,
        path: [...servicePath, "port"],
      });
    }
    for (const use of mine) {
      const clash = uses.find((other) => use.low <= other.high && other.low <= use.high);
      if (clash !== undefined) {
        problems.push({ path: use.path, target: "value", message: clashMessage(use, clash) });
      }
      uses.push(use);
    }
  }
  return problems;
}

function clashMessage(use: PortUse, other: PortUse): string {
  const owner = other.service === use.service ? "this service" : `service "${other.service}"`;
  const theirs =
    other.kind === "front"
      ? `the front port ${other.low} of ${owner}`
      : `the instance ports ${other.low}-${other.high} of ${owner}`;
  const mine = use.kind === "front" ? `port ${use.low}` : `instance ports ${use.low}-${use.high}`;
  const why = use.kind === "instances" || other.kind === "instances" ? BANKS_WHY : "";
  return `${mine} overlap${use.kind === "front" ? "s" : ""} ${theirs}${why}`;
}

const BANKS_WHY = `: a service reserves ${PORT_BANKS} × replicas ports from basePort (two banks, so a new release can start beside the running one)`;
