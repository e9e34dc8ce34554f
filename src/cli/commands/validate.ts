import { thisMachine } from "../../dataplane/haproxy/machineChecks.ts";
import { HomeostatError } from "../../errors.ts";
import { formatSpecError, loadFleetFile } from "../../spec/index.ts";
import { parse } from "../args.ts";
import type { Command } from "../command.ts";

export const validateCommand: Command = {
  name: "validate",
  summary: "check a fleet file; print ok or every error as file:line:col",
  usage: `homeostat validate FILE [--json]

Checks FILE against the fleet schema and the cross-field rules (ports, dependencies,
releases, placement). Prints "ok" and exits 0, or prints every error, one per line, as
  FILE:LINE:COL: PATH: MESSAGE
and exits 1.

Options:
  --json   print {"ok": true} or {"ok": false, "errors": [{file,line,col,path,message}]}`,
  async run(argv, io) {
    const { values, positionals } = parse("validate", argv, { json: { type: "boolean" } }, 1);
    const file = positionals[0];
    if (file === undefined)
      throw new HomeostatError("HS_USAGE", "validate: missing FILE (see `homeostat validate --help`)");
    const result = await loadFleetFile(file, thisMachine);
    if (values.json === true) {
      io.out(JSON.stringify(result.ok ? { ok: true } : { ok: false, errors: result.errors }, null, 2));
      return result.ok ? 0 : 1;
    }
    if (result.ok) {
      io.out("ok");
      return 0;
    }
    for (const error of result.errors) io.out(formatSpecError(error));
    return 1;
  },
};
