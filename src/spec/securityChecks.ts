import type { Problem } from "./problem.ts";
import { didYouMean } from "./suggest.ts";

/**
 * Each denied release names a declared service. Its version is not checked against the file's
 * releases: a denied version is often one already removed from the file but still in history,
 * which is exactly where a rollback would find it.
 */
export function checkSecurity(
  deniedServices: readonly (string | undefined)[],
  declaredServices: readonly string[],
): Problem[] {
  const problems: Problem[] = [];
  deniedServices.forEach((service, index) => {
    if (service === undefined || declaredServices.includes(service)) return;
    problems.push({
      path: ["security", "deniedReleases", index, "service"],
      target: "value",
      message: `unknown service "${service}"${didYouMean(service, declaredServices)}`,
    });
  });
  return problems;
}
