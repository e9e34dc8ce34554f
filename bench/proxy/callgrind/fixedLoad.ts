/**
 * A closed loop of exactly `count` GET / requests over `connections` keep-alive connections: a
 * fixed amount of work, so that an instruction count divides by a known number of requests.
 *
 *   node bench/proxy/callgrind/fixedLoad.ts PORT COUNT CONNECTIONS
 *
 * Prints `{"count":…,"non200":…,"hedged":…,"seconds":…}`.
 */

import { Agent, get } from "node:http";

const [port, count, connections] = process.argv.slice(2).map(Number) as [number, number, number];
const agent = new Agent({ keepAlive: true, maxSockets: connections });
let sent = 0;
let done = 0;
let non200 = 0;
let hedged = 0;
const started = performance.now();
await new Promise<void>((resolve) => {
  const next = (): void => {
    if (sent >= count) {
      if (done >= count) resolve();
      return;
    }
    sent++;
    const ended = (): void => {
      done++;
      next();
    };
    get({ host: "127.0.0.1", port, path: "/", agent }, (res) => {
      if (res.statusCode !== 200) non200++;
      if (res.headers["x-homeostat-hedged"] !== undefined) hedged++;
      res.resume();
      res.on("end", ended);
    }).on("error", () => {
      non200++;
      ended();
    });
  };
  for (let i = 0; i < connections; i++) next();
});
agent.destroy();
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({ count, non200, hedged, seconds })}\n`);
