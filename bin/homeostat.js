#!/usr/bin/env node
// Entry point. Homeostat is TypeScript run by Node's type stripping, which needs Node >= 22.18.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `homeostat: needs Node.js >= 22.18 (this is ${process.version}). ` +
      "Run it through npm (`npm start`, `npx homeostat …`), which uses the Node 24 installed by `npm install`.\n",
  );
  process.exit(2);
}
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
// Pipes and files are written synchronously on Linux, so exiting here loses no output; it also
// ends any timer a library left behind instead of hanging after the work is done.
process.exit(code);
