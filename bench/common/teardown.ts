/**
 * Teardown steps, run once, in reverse order, whether the run ends, fails or is interrupted
 * (SIGINT, SIGTERM): no process a bench started may outlive it. The last step SIGKILLs whatever
 * the ledger still sees running.
 */

import { ProcessLedger } from "../foundation/processes.ts";

export class Teardown {
  /** Every process started, remembered with its start time, SIGKILLed by the last step. */
  readonly ledger = new ProcessLedger();
  readonly #steps: { what: string; run: () => Promise<void> }[] = [];
  readonly #log: (message: string) => void;
  #done: Promise<void> | null = null;

  constructor(log: (message: string) => void) {
    this.#log = log;
    this.add("sweep the processes the bench saw", async () => {
      const killed = this.ledger.sweep();
      if (killed.length > 0) log(`teardown: SIGKILLed leftover pids ${killed.join(", ")}`);
    });
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        log(`${signal}: stopping every process the bench started…`);
        void this.run().finally(() => process.exit(130));
      });
    }
  }

  add(what: string, run: () => Promise<void>): void {
    this.#steps.push({ what, run });
  }

  run(): Promise<void> {
    this.#done ??= (async () => {
      for (const step of [...this.#steps].reverse()) {
        try {
          await step.run();
        } catch (error) {
          this.#log(
            `teardown: ${step.what} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
    })();
    return this.#done;
  }
}
