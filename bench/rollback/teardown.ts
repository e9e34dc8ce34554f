/**
 * Teardown steps, run once, in reverse order, whether the run ends, fails or is interrupted.
 */

export class Teardown {
  readonly #steps: { what: string; run: () => Promise<void> }[] = [];
  readonly #log: (message: string) => void;
  #done: Promise<void> | null = null;

  constructor(log: (message: string) => void) {
    this.#log = log;
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
