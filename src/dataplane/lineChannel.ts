/**
 * One feed connection: newline-delimited JSON messages, each checked against a zod schema on
 * arrival. A peer that sends a line that is not JSON, does not match, or is longer than the bound
 * is cut off: the feed is between two parts of one program, so a bad line is a bug or a stranger.
 */

import type { Socket } from "node:net";
import type { z } from "zod";

/** Longest line accepted: a snapshot of a large fleet fits many times over. */
const MAX_LINE_BYTES = 32 * 1024 * 1024;

export class LineChannel<In, Out> {
  readonly #socket: Socket;
  #buffered: string[] = [];
  #bufferedBytes = 0;
  #closed = false;
  readonly #closeHandlers: ((why: string) => void)[] = [];

  constructor(socket: Socket, schema: z.ZodType<In>, onMessage: (message: In) => void) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.setNoDelay(true);
    socket.on("data", (chunk: string) => {
      let start = 0;
      for (let newline = chunk.indexOf("\n"); newline !== -1; newline = chunk.indexOf("\n", start)) {
        const line = this.#buffered.join("") + chunk.slice(start, newline);
        this.#buffered = [];
        this.#bufferedBytes = 0;
        start = newline + 1;
        if (line.length === 0) continue;
        let parsed: z.ZodSafeParseResult<In>;
        try {
          parsed = schema.safeParse(JSON.parse(line));
        } catch {
          this.close("a feed line is not JSON");
          return;
        }
        if (!parsed.success) {
          this.close(`a feed message does not match the protocol: ${parsed.error.issues[0]?.message ?? "?"}`);
          return;
        }
        onMessage(parsed.data);
        if (this.#closed) return;
      }
      const rest = chunk.slice(start);
      if (rest.length > 0) {
        this.#buffered.push(rest);
        this.#bufferedBytes += rest.length;
        if (this.#bufferedBytes > MAX_LINE_BYTES) this.close("a feed line is longer than the bound");
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => this.#finish("connection closed"));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queue a message; false when the channel is closed (the message is dropped). */
  send(message: Out): boolean {
    if (this.#closed || this.#socket.destroyed) return false;
    this.#socket.write(`${JSON.stringify(message)}\n`);
    return true;
  }

  /** Bytes written but not yet handed to the kernel: a slow reader shows here. */
  get pendingBytes(): number {
    return this.#socket.writableLength;
  }

  onClose(handler: (why: string) => void): void {
    if (this.#closed) handler("closed");
    else this.#closeHandlers.push(handler);
  }

  /** Close after what was sent has been flushed (a last message must arrive). */
  end(why: string): void {
    this.#socket.end();
    this.#finish(why);
  }

  close(why: string): void {
    this.#socket.destroy();
    this.#finish(why);
  }

  #finish(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const handler of this.#closeHandlers.splice(0)) handler(why);
  }
}
