/**
 * How a request body travels upstream. Small bodies of known length are read up front so that a
 * retry can send them again; anything else is streamed once (with backpressure) and makes the
 * request not replayable, so it is never retried.
 */

import type { IncomingMessage } from "node:http";

/** Bodies up to this size (with a known length) are buffered and can be replayed. */
export const MAX_REPLAY_BYTES = 64 * 1024;

export type BodyPlan =
  | { kind: "none" }
  | { kind: "buffer"; length: number }
  /** Unknown (chunked) or large length: streamed once. */
  | { kind: "stream" };

const NONE: BodyPlan = Object.freeze({ kind: "none" });
const STREAM: BodyPlan = Object.freeze({ kind: "stream" });

/** The plan for `req`, whose framing was already checked (a plain decimal length, or chunked). */
export function bodyPlan(req: IncomingMessage): BodyPlan {
  if (req.headers["transfer-encoding"] !== undefined) return STREAM;
  const declared = req.headers["content-length"];
  if (declared === undefined) return NONE;
  const length = Number(declared);
  if (length === 0) return NONE;
  return length <= MAX_REPLAY_BYTES ? { kind: "buffer", length } : STREAM;
}

/**
 * Read exactly `length` bytes of body into one buffer; null if the client went away first, or
 * if the reading was cancelled through the function handed to `onCancel`.
 */
export function readBody(
  req: IncomingMessage,
  length: number,
  onCancel: (cancel: () => void) => void,
): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const body = Buffer.allocUnsafe(length);
    let received = 0;
    const onData = (chunk: Buffer): void => {
      // Node's parser enforces the declared length; the bound check is belt and braces.
      const take = Math.min(chunk.length, length - received);
      chunk.copy(body, received, 0, take);
      received += take;
    };
    let finished = false;
    const done = (complete: boolean): void => {
      if (finished) return;
      finished = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      resolve(complete && received === length ? body : null);
    };
    const onEnd = (): void => done(true);
    const onClose = (): void => done(req.complete);
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("close", onClose);
    onCancel(() => done(false));
  });
}
