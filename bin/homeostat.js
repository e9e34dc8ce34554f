#!/usr/bin/env node
// Entry point. Two layouts, one command:
// - a clone of the repository: Node runs the TypeScript in src/ directly (type stripping, which
//   needs Node >= 22.18). A dist/ left over from `npm pack` is never used there, so what runs is
//   always the source being edited;
// - the installed npm package: src/ is not shipped (Node does not strip types under node_modules),
//   and the JavaScript that `npm pack` compiled into dist/ runs instead.
import { existsSync } from "node:fs";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = new URL("../", import.meta.url);
const source = new URL("src/cli/main.ts", root);
const compiled = new URL("dist/cli/main.js", root);
const fromClone = existsSync(source) && !fileURLToPath(root).split(sep).includes("node_modules");

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `homeostat: needs Node.js >= 22.18 (this is ${process.version}). ` +
      (fromClone
        ? "Run it through npm (`npm start`, `npx homeostat …`), which uses the Node 24 installed by `npm install`.\n"
        : "Install a newer Node.js (https://nodejs.org, or your version manager) and run it with that.\n"),
  );
  process.exit(2);
}
if (!fromClone && !existsSync(compiled)) {
  process.stderr.write(
    `homeostat: ${fileURLToPath(compiled)} is missing: this copy was packed without its build. ` +
      "Pack it with `npm pack` (its prepack script runs `npm run build`), or run `npm run build` first.\n",
  );
  process.exit(2);
}
const { main } = await import(fromClone ? source.href : compiled.href);
const code = await main(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
// Pipes and files are written synchronously on Linux, so exiting here loses no output; it also
// ends any timer a library left behind instead of hanging after the work is done.
process.exit(code);
