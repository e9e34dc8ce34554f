import { HomeostatError } from "../errors.ts";
import type { Problem } from "./problem.ts";
import { didYouMean } from "./suggest.ts";

/** The part of a service that dependency rules look at. */
export interface DependencyNode {
  name: string;
  dependsOn: readonly string[];
}

/**
 * Unknown and repeated entries of `dependsOn`, and dependency cycles. `declared` names every
 * service in the file (even ones that failed validation, so they are not reported as unknown);
 * `nodes` are the services whose edges are known. Each cycle is reported once, at the
 * `dependsOn` entry that closes it, e.g. `dependency cycle: catalog -> checkout -> catalog`.
 */
export function checkDependencies(nodes: readonly DependencyNode[], declared: readonly string[]): Problem[] {
  const problems: Problem[] = [];
  for (const node of nodes) {
    node.dependsOn.forEach((dependency, index) => {
      const path = ["services", node.name, "dependsOn", index];
      if (!declared.includes(dependency)) {
        const suggestion = didYouMean(dependency, declared);
        problems.push({ path, target: "value", message: `unknown service "${dependency}"${suggestion}` });
      } else if (node.dependsOn.indexOf(dependency) !== index) {
        problems.push({ path, target: "value", message: `service "${dependency}" is listed twice` });
      }
    });
  }
  return [...problems, ...findCycles(nodes)];
}

function findCycles(nodes: readonly DependencyNode[]): Problem[] {
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const seen = new Set<string>();
  const problems: Problem[] = [];

  const visit = (node: DependencyNode): void => {
    state.set(node.name, "visiting");
    stack.push(node.name);
    node.dependsOn.forEach((dependency, index) => {
      const next = byName.get(dependency);
      if (next === undefined || node.dependsOn.indexOf(dependency) !== index) return;
      const nextState = state.get(dependency);
      if (nextState === "visiting") {
        const cycle = [...stack.slice(stack.indexOf(dependency)), dependency];
        const key = [...cycle.slice(1)].sort().join(" ");
        if (seen.has(key)) return;
        seen.add(key);
        problems.push({
          path: ["services", node.name, "dependsOn", index],
          target: "value",
          message: `dependency cycle: ${cycle.join(" -> ")}`,
        });
      } else if (nextState === undefined) {
        visit(next);
      }
    });
    stack.pop();
    state.set(node.name, "done");
  };

  for (const node of nodes) if (!state.has(node.name)) visit(node);
  return problems;
}

/**
 * Names in dependency order (dependencies first), stable by declaration order: each step takes
 * the earliest declared service whose dependencies are all placed. Assumes no cycles.
 */
export function dependencyOrder(nodes: readonly DependencyNode[]): string[] {
  const placed = new Set<string>();
  const order: string[] = [];
  const remaining = [...nodes];
  while (remaining.length > 0) {
    const index = remaining.findIndex((node) => node.dependsOn.every((dependency) => placed.has(dependency)));
    if (index === -1) {
      throw new HomeostatError("HS_INTERNAL", "dependency order asked for services that form a cycle");
    }
    const [next] = remaining.splice(index, 1);
    placed.add(next!.name);
    order.push(next!.name);
  }
  return order;
}
