import { HomeostatError } from "../../errors.ts";
import type { FaultAnswer } from "../../server/routes/schemas.ts";
import { tryDurationMs } from "../../spec/duration.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse, stringOption } from "../args.ts";
import type { Command } from "../command.ts";
import { clock, table } from "../format.ts";
import { overrideFields, overrideOptions } from "../override.ts";

export const faultCommand: Command = {
  name: "fault",
  summary: "inject, list and remove data-plane faults for drills",
  usage: `homeostat fault add KIND [ARG] [--service S] [--instance I] [--zone Z] [--rate R] [--override --reason T]
homeostat fault list [--json]
homeostat fault rm ID
homeostat fault clear

Makes the data plane treat matching upstream attempts as if the instances misbehaved, so
outlier detection, retries and shedding react exactly as they would to a real failure.
KIND is one of:
  latency DURATION   delay each attempt (e.g. latency 200ms)
  error STATUS       answer STATUS without contacting the instance (e.g. error 503)
  reset              fail the attempt as a connection reset
  blackhole          the attempt never answers (it times out per try)
Targets combine (all given must match); none means every endpoint. --rate R (0 < R ≤ 1)
affects only that share of attempts (error and reset). Faults live in the controller's memory
only: they are all removed when it stops. Every change is journaled and shown as an event.

Options:
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "fault",
      argv,
      {
        service: { type: "string" },
        instance: { type: "string" },
        zone: { type: "string" },
        rate: { type: "string" },
        ...overrideOptions,
        json: { type: "boolean" },
        ...apiPortOption,
      },
      3,
    );
    const client = apiClient(apiPort(values));
    const [verb, kind, arg] = positionals;
    switch (verb) {
      case "list": {
        const { faults } = await client.get<{ faults: FaultAnswer[] }>("/v1/faults");
        if (values.json === true) io.out(JSON.stringify(faults, null, 2));
        else if (faults.length === 0) io.out("no faults");
        else {
          io.out(
            table(
              ["ID", "SINCE", "TARGET", "FAULT"],
              faults.map((f) => [
                f.id,
                clock(f.createdAt),
                [f.service, f.instance, f.zone].filter(Boolean).join("/") || "everything",
                describeFault(f.fault),
              ]),
            ),
          );
        }
        return 0;
      }
      case "rm": {
        if (kind === undefined)
          throw new HomeostatError("HS_USAGE", "fault rm: missing ID (see `homeostat fault list`)");
        await client.delete(`/v1/faults/${encodeURIComponent(kind)}`);
        io.out(`removed ${kind}`);
        return 0;
      }
      case "clear": {
        const { removed } = await client.delete<{ removed: number }>("/v1/faults");
        io.out(`removed ${removed} fault(s)`);
        return 0;
      }
      case "add": {
        const fault = parseFault(kind, arg, stringOption(values, "rate"));
        const body: Record<string, unknown> = { fault, ...overrideFields("fault add", values) };
        for (const key of ["service", "instance", "zone"]) {
          const v = stringOption(values, key);
          if (v !== undefined) body[key] = v;
        }
        const { fault: rule } = await client.post<{ fault: FaultAnswer }>("/v1/faults", body);
        io.out(
          `${rule.id}: ${describeFault(rule.fault)} on ${[rule.service, rule.instance, rule.zone].filter(Boolean).join("/") || "everything"}`,
        );
        return 0;
      }
      default:
        throw new HomeostatError(
          "HS_USAGE",
          `fault: expected add, list, rm or clear (see \`homeostat fault --help\`)`,
        );
    }
  },
};

function parseFault(
  kind: string | undefined,
  arg: string | undefined,
  rateText: string | undefined,
): FaultAnswer["fault"] {
  const rate = rateText === undefined ? undefined : Number(rateText);
  if (rate !== undefined && !(rate > 0 && rate <= 1)) {
    throw new HomeostatError("HS_USAGE", `--rate: expected a number in (0, 1], got "${rateText}"`);
  }
  switch (kind) {
    case "latency": {
      const ms = arg === undefined ? undefined : /^\d+$/.test(arg) ? Number(arg) : tryDurationMs(arg);
      if (ms === undefined)
        throw new HomeostatError(
          "HS_USAGE",
          `fault add latency: expected a duration like 200ms, got "${arg ?? ""}"`,
        );
      return { kind: "latency", ms };
    }
    case "error": {
      const status = Number(arg);
      if (!Number.isInteger(status))
        throw new HomeostatError(
          "HS_USAGE",
          `fault add error: expected a status like 503, got "${arg ?? ""}"`,
        );
      return rate === undefined ? { kind: "error", status } : { kind: "error", status, rate };
    }
    case "reset":
      return rate === undefined ? { kind: "reset" } : { kind: "reset", rate };
    case "blackhole":
      return { kind: "blackhole" };
    default:
      throw new HomeostatError(
        "HS_USAGE",
        `fault add: KIND must be latency, error, reset or blackhole, got "${kind ?? ""}"`,
      );
  }
}

function describeFault(fault: FaultAnswer["fault"]): string {
  switch (fault.kind) {
    case "latency":
      return `latency ${fault.ms}ms`;
    case "error":
      return `error ${fault.status}${fault.rate !== undefined && fault.rate < 1 ? ` (${fault.rate * 100}%)` : ""}`;
    case "reset":
      return `reset${fault.rate !== undefined && fault.rate < 1 ? ` (${fault.rate * 100}%)` : ""}`;
    case "blackhole":
      return "blackhole";
  }
}
