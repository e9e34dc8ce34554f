import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { HomeostatError } from "../../errors.ts";
import { parse } from "../args.ts";
import type { Command } from "../command.ts";

/** What a fleet or service name must look like (docs/fleet-spec.md, "name"). */
const NAME = /^[a-z][a-z0-9-]{0,39}$/;

/** The file `init` writes into its directory. */
export const STARTER_FILE = "fleet.yaml";

export const initCommand: Command = {
  name: "init",
  summary: "write a commented starter fleet file (fleet.yaml) to begin from",
  usage: `homeostat init [DIR] [--name NAME] [--force]

Writes DIR/fleet.yaml (DIR defaults to the current directory and is created if missing): one
service of two replicas running a tiny HTTP server on Homeostat's own Node.js, with probes, a
front port and comments saying what each part means. It validates as is; replace the command
with your own program. Then: homeostat validate DIR/fleet.yaml, homeostat up DIR/fleet.yaml.

Options:
  --name NAME  the fleet's name (default: DIR's name, made a valid name; lowercase letters,
               digits and dashes, starting with a letter)
  --force      overwrite DIR/fleet.yaml if it exists (without it, init refuses)`,
  async run(argv, io) {
    const { values, positionals } = parse(
      "init",
      argv,
      { name: { type: "string" }, force: { type: "boolean" } },
      1,
    );
    const dir = resolve(positionals[0] ?? ".");
    const given = values.name;
    const name = typeof given === "string" ? given : nameFromDir(dir);
    if (!NAME.test(name)) {
      throw new HomeostatError(
        "HS_USAGE",
        `init: --name ${JSON.stringify(name)} is not a valid name: lowercase letters, digits and dashes, starting with a letter, at most 40`,
      );
    }
    const file = join(dir, STARTER_FILE);
    if (existsSync(file) && values.force !== true) {
      throw new HomeostatError(
        "HS_USAGE",
        `init: ${shown(file)} already exists; nothing was written (--force overwrites it)`,
      );
    }
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, starterFleet(name));
    const path = shown(file);
    io.out(`homeostat: wrote ${path} (fleet "${name}": service "web", 2 replicas)`);
    io.out("");
    const next: [string, string][] = [
      [`homeostat validate ${path}`, 'check it: "ok", or every error as file:line:col'],
      [`homeostat up ${path}`, "run it in the foreground (Ctrl-C stops everything)"],
      ["curl http://127.0.0.1:18080/", "from another terminal: the service, through Homeostat"],
      ["homeostat status", "services and instances"],
      ["homeostat down", "stop the fleet and the controller"],
    ];
    const width = Math.max(...next.map(([command]) => command.length));
    io.out("Next:");
    for (const [command, what] of next) io.out(`  ${command.padEnd(width)}  ${what}`);
    return 0;
  },
};

/** A path as the user would type it: relative to the current directory when inside it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") || rel === "" ? path : rel;
}

/** The directory's name made a valid fleet name (`My App` → `my-app`), else `my-fleet`. */
export function nameFromDir(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .replace(/-+$/, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  return NAME.test(name) ? name : "my-fleet";
}

/**
 * The starter fleet file. Its server is Node's own `node:http` run with `node -e`: Homeostat puts
 * the Node.js it runs on first on every instance's PATH, so the file works wherever Homeostat
 * does, with nothing else installed. Probes are written out (rather than left to defaults) so
 * that the file shows what they are and where to change them.
 */
export function starterFleet(name: string): string {
  return `# A Homeostat fleet: the services Homeostat keeps running, and how it knows they are well.
# Written by \`homeostat init\`. Check it with \`homeostat validate fleet.yaml\`, run it with
# \`homeostat up fleet.yaml\`. Every key is described in docs/fleet-spec.md (in the homeostat
# package and repository); \`homeostat schema\` prints a JSON Schema for editor completion.
version: 1
name: ${name}

services:
  # One service. Add more under \`services:\`; \`dependsOn: [other]\` starts one after another.
  web:
    # How many instances to keep running. Homeostat restarts one that dies or fails its liveness
    # probe, and replaces one at a time when you deploy a new release.
    replicas: 2
    # Instance i listens on basePort + i. The service reserves 2 x replicas ports from here
    # (18081-18084): a new release starts beside the running one during a deploy.
    basePort: 18081
    # The service's front port: Homeostat's data plane listens here and spreads requests over
    # the ready instances (retries, timeouts, load shedding: see \`traffic:\` in the docs).
    port: 18080
    # The release that should run: a key of \`releases:\` below. To deploy, add a release and run
    # \`homeostat deploy web NEW\` (progressive, with analysis and automatic rollback).
    release: v1
    releases:
      v1:
        # Any program can be an instance; it must listen on 127.0.0.1 at the port it is given:
        # \`{port}\` in args, or $PORT in its environment. This one is a tiny HTTP server run by the
        # Node.js Homeostat runs on. Replace it with your own, for example:
        #   command: python3
        #   args: [-m, http.server, "{port}", --bind, 127.0.0.1]
        command: node
        args:
          - -e
          - |
            require("node:http")
              .createServer((req, res) => res.end(\`\${process.env.GREETING} from \${process.env.HOMEOSTAT_INSTANCE}\\n\`))
              .listen(Number(process.env.PORT), "127.0.0.1");
        # Extra environment for the instances (strings only); the server above says it.
        env:
          GREETING: hello
    # How Homeostat judges an instance: ready (gets traffic) and live (else it is restarted).
    probes:
      readiness:
        http: { path: / }
        interval: 1s
        timeout: 500ms
      liveness:
        tcp: {}
        interval: 2s
        timeout: 500ms
        failureThreshold: 3
`;
}
