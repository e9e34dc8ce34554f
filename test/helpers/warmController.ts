/**
 * A `homeostat` process loaded ahead of time: it imports the CLI (and with it the whole
 * controller), says `warm` on stdout, then waits for one line on stdin — the JSON argv — and runs
 * the CLI's `main` with it exactly as bin/homeostat.js does. The crash tests keep one ready, so
 * the controller that takes over after a crash starts in a fraction of a second instead of
 * spending one to three seconds of a loaded CI machine importing modules: the restart they time
 * is Homeostat's recovery, not Node's start-up.
 */

import { main } from "../../src/cli/main.ts";

process.stdout.write("warm\n");
const line = await new Promise<string>((resolve) => {
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffered += chunk;
    const end = buffered.indexOf("\n");
    if (end >= 0) resolve(buffered.slice(0, end));
  });
});
// Nothing more is read: the pipe must not keep this process alive or feed it anything else.
process.stdin.pause();
process.stdin.unref?.();
const code = await main(JSON.parse(line) as string[], {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
});
process.exit(code);
