/**
 * The open-loop generator as its own process, so that its event loop is nobody else's:
 *
 *   node bench/proxy/loadgen.ts OPTIONS_JSON RESULT_FILE
 *
 * Prints `{"t0EpochMs":…}` when the schedule is fixed, writes the result as JSON to RESULT_FILE,
 * then prints `{"done":true}`.
 */

import { writeFileSync } from "node:fs";
import { type OpenLoopOptions, runOpenLoop } from "./openLoop.ts";

const [optionsJson, resultFile] = process.argv.slice(2);
if (optionsJson === undefined || resultFile === undefined) {
  process.stderr.write("usage: loadgen.ts OPTIONS_JSON RESULT_FILE\n");
  process.exit(2);
}
const options = JSON.parse(optionsJson) as OpenLoopOptions;
const result = await runOpenLoop(options, (t0EpochMs) => {
  process.stdout.write(`${JSON.stringify({ t0EpochMs })}\n`);
});
writeFileSync(resultFile, JSON.stringify(result));
process.stdout.write(`${JSON.stringify({ done: true })}\n`);
process.exit(0);
