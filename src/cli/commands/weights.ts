import { HomeostatError } from "../../errors.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { Command } from "../command.ts";
import { OVERRIDE_HELP, overrideFields, overrideOptions } from "../override.ts";

export const weightsCommand: Command = {
  name: "weights",
  summary: "split a service's traffic between releases (atomic, audited)",
  usage: `homeostat weights SERVICE RELEASE=WEIGHT… | SERVICE --clear [--override --reason T] [--api-port N]

Sets how the data plane splits SERVICE's traffic between its running releases, e.g.
  homeostat weights checkout v1=90 v2=10
Weights are relative (any non-negative numbers, at least one positive). The change is atomic:
no request sees a mix of old and new weights. --clear removes the split (all traffic to the
instances of the current release). Every change is journaled and shown in \`homeostat events\`.

Options:
  --clear        remove the split
${OVERRIDE_HELP}
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "weights",
      argv,
      { clear: { type: "boolean" }, ...overrideOptions, ...apiPortOption },
      64,
    );
    const [service, ...pairs] = positionals;
    if (service === undefined)
      throw new HomeostatError("HS_USAGE", "weights: missing SERVICE (see `homeostat weights --help`)");
    let weights: Record<string, number> | null = null;
    if (values.clear !== true) {
      if (pairs.length === 0)
        throw new HomeostatError("HS_USAGE", "weights: give RELEASE=WEIGHT pairs, or --clear");
      weights = {};
      for (const pair of pairs) {
        const match = /^([^=]+)=(\d+(?:\.\d+)?)$/.exec(pair);
        if (!match) throw new HomeostatError("HS_USAGE", `weights: expected RELEASE=WEIGHT, got "${pair}"`);
        weights[match[1]!] = Number(match[2]);
      }
    } else if (pairs.length > 0) {
      throw new HomeostatError("HS_USAGE", "weights: --clear takes no RELEASE=WEIGHT pairs");
    }
    await apiClient(apiPort(values)).put(`/v1/services/${encodeURIComponent(service)}/weights`, {
      weights,
      ...overrideFields("weights", values),
    });
    io.out(weights === null ? `${service}: split cleared` : `${service}: ${pairs.join(" ")}`);
    return 0;
  },
};
