/**
 * Preloaded into the data-plane process by the proxy bench (`node --import` this file
 * `src/dataplane/main.ts …`), which has no SIGUSR2 handler of its own (and would die of one): it
 * then reports its event-loop delay on SIGUSR2 like the other Node contender (loopDelay.ts). The
 * data plane's own code is untouched; the histogram costs it what it costs node-bare.
 */

import { reportLoopDelayOnSignal } from "./loopDelay.ts";

reportLoopDelayOnSignal();
