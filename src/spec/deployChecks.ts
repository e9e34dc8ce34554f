import { DEPLOY_DEFAULTS } from "./deploy.ts";
import { durationMs } from "./duration.ts";
import type { Problem } from "./problem.ts";
import type { DeployInput } from "./schema.ts";
import type { PathSegment } from "./yamlSource.ts";

/** What the deploy rules need to know about one service. */
export interface DeployCheckedService {
  name: string;
  deploy?: DeployInput | undefined;
}

/**
 * `stepDeadline` must be at least `stepDuration` once a service's settings are merged over
 * `defaults.deploy`: a step is judged only after `stepDuration`, so a shorter deadline aborts every
 * deploy. Only a value that a mapping sets can be wrong: an inconsistency inside `defaults.deploy` is
 * reported once, there, and an unset deadline follows the duration (see `defaultStepDeadlineMs`).
 */
export function checkDeploys(
  defaults: DeployInput | undefined,
  services: readonly DeployCheckedService[],
): Problem[] {
  const problems: Problem[] = [];
  if (defaults !== undefined) problems.push(...checkDeadline(undefined, defaults, ["defaults", "deploy"]));
  for (const service of services) {
    if (service.deploy === undefined) continue;
    problems.push(...checkDeadline(defaults, service.deploy, ["services", service.name, "deploy"]));
  }
  return problems;
}

function checkDeadline(defaults: DeployInput | undefined, own: DeployInput, path: PathSegment[]): Problem[] {
  if (own.stepDuration === undefined && own.stepDeadline === undefined) return [];
  const deadline = own.stepDeadline ?? defaults?.stepDeadline;
  if (deadline === undefined) return [];
  const duration = own.stepDuration ?? defaults?.stepDuration;
  const durationValue = duration === undefined ? DEPLOY_DEFAULTS.stepDurationMs : durationMs(duration);
  const deadlineValue = durationMs(deadline);
  if (deadlineValue >= durationValue) return [];
  const origin = (ownValue: unknown, fromDefaults: unknown) =>
    ownValue !== undefined ? "" : fromDefaults !== undefined ? " (from defaults.deploy)" : " (the default)";
  const blamed = own.stepDeadline !== undefined ? "stepDeadline" : "stepDuration";
  return [
    {
      path: [...path, blamed],
      target: "value",
      message: `stepDeadline ${deadlineValue}ms${origin(own.stepDeadline, defaults?.stepDeadline)} is shorter than stepDuration ${durationValue}ms${origin(own.stepDuration, defaults?.stepDuration)}: a step is judged after stepDuration, so it could never pass before its deadline`,
    },
  ];
}
