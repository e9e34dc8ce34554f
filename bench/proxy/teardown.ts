/** The proxy and failover benches' log line, and the shared teardown bound to it. */

import { Teardown as CommonTeardown } from "../common/teardown.ts";

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** bench/common/teardown.ts, logging with the `[bench]` prefix. */
export class Teardown extends CommonTeardown {
  constructor() {
    super(log);
  }
}
