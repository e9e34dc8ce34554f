import { fleetJsonSchema } from "../../spec/index.ts";
import { parse } from "../args.ts";
import type { Command } from "../command.ts";

export const schemaCommand: Command = {
  name: "schema",
  summary: "print the fleet file's JSON Schema (for editor completion)",
  usage: `homeostat schema

Prints the JSON Schema (draft 2020-12) of fleet files. For completion and inline errors in
editors using yaml-language-server, save it and add to the top of a fleet file:
  # yaml-language-server: $schema=./fleet.schema.json`,
  async run(argv, io) {
    parse("schema", argv, {}, 0);
    io.out(JSON.stringify(fleetJsonSchema(), null, 2));
    return 0;
  },
};
