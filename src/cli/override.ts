/**
 * `--override` on the commands that act on the fleet (deploy, rollback, failback, apply, restart,
 * weights, fault add, dataplane restart): while automation is paused (`homeostat pause`) the API
 * refuses them unless they say so, with a reason that goes to the audit trail.
 */

import { HomeostatError } from "../errors.ts";
import { type Options, type Parsed, stringOption } from "./args.ts";

/** `--override` and `--reason TEXT`. */
export const overrideOptions: Options = { override: { type: "boolean" }, reason: { type: "string" } };

/** The lines every such command's `--help` shows. */
export const OVERRIDE_HELP = `  --override     act although automation is paused (\`homeostat pause\`); needs --reason; audited
  --reason TEXT  why (recorded in the audit trail with the request)`;

/** The body fields for `--override` and `--reason`, as given. */
export function overrideFields(
  command: string,
  values: Parsed["values"],
): { override?: true; reason?: string } {
  const reason = stringOption(values, "reason");
  if (values.override === true && (reason === undefined || reason.trim() === "")) {
    throw new HomeostatError("HS_USAGE", `${command}: --override needs --reason TEXT (it is audited)`);
  }
  return {
    ...(values.override === true ? { override: true as const } : {}),
    ...(reason === undefined ? {} : { reason }),
  };
}
