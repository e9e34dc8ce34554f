import { reason } from "../decide/reasons.ts";
import type { BrakesApi } from "../server/api.ts";
import type { AutomationBrakes } from "./brakes.ts";
import type { Controller } from "./controller.ts";

/** The API's view of the automation brakes, and a person's restart of one instance. */
export function brakesApi(
  brakes: AutomationBrakes,
  controller: Pick<Controller, "restartByHand">,
): BrakesApi {
  return {
    status: () => brakes.status(),
    pause: (by, why) => brakes.pause(by, why),
    resume: (by, why) => brakes.resume(by, why),
    assertManual: (action) => brakes.assertManual(action),
    restart: (instance, why, who) =>
      controller.restartByHand(
        instance,
        reason("operator", `restart by hand (${who})${why.trim() === "" ? "" : `: ${why.trim()}`}`),
      ),
  };
}
