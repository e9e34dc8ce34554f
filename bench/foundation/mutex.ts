/**
 * Turns concurrent phases into non-overlapping critical sections: the naive supervisor's hang
 * trials run beside Homeostat's, and their restarts (a Node start, a burst of CPU) must not land
 * in the middle of a Homeostat recovery being timed.
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Run `fn` once every earlier `run` has finished; resolves with its result. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release: () => void = () => {};
    this.#tail = new Promise((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
