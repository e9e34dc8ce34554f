/**
 * A Server-Sent Events reader for tests, the way the dashboard reads the stream: fetch and a
 * stream reader (so the token goes in a header), parsing frames as they arrive.
 */

import { waitFor } from "./waitFor.ts";

export interface SseFrame {
  event: string;
  id?: string;
  data: string;
  /** The data as JSON (every frame the API sends carries JSON). */
  json: unknown;
}

export interface SseReader {
  status: number;
  headers: Headers;
  /** Every frame received so far, in order (comments excluded). */
  frames: SseFrame[];
  /** Comment lines received so far (`: heartbeat`). */
  comments: string[];
  /** True once the server ended the stream. */
  ended(): boolean;
  /** Waits until `predicate` holds on the frames received; returns its value. */
  until<T>(
    predicate: (frames: SseFrame[]) => T | false | null | undefined,
    what: string,
    timeoutMs?: number,
  ): Promise<T>;
  /** Closes the connection from the client side. */
  close(): void;
}

/** Opens `url` as an event stream; `headers` go with the request (Authorization, Last-Event-ID). */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const frames: SseFrame[] = [];
  const comments: string[] = [];
  let ended = false;
  if (response.body !== null && response.ok) {
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end = buffer.indexOf("\n\n");
          while (end >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const frame: Partial<SseFrame> & { data?: string } = {};
            const data: string[] = [];
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) comments.push(line.slice(1).trim());
              else if (line.startsWith("event: ")) frame.event = line.slice(7);
              else if (line.startsWith("id: ")) frame.id = line.slice(4);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (data.length > 0) {
              const text = data.join("\n");
              frames.push({
                event: frame.event ?? "message",
                ...(frame.id === undefined ? {} : { id: frame.id }),
                data: text,
                json: JSON.parse(text),
              });
            }
            end = buffer.indexOf("\n\n");
          }
        }
      } catch {
        // aborted by close(), or the server went away
      }
      ended = true;
    })();
  } else {
    ended = true;
  }
  return {
    status: response.status,
    headers: response.headers,
    frames,
    comments,
    ended: () => ended,
    until: (predicate, what, timeoutMs = 15_000) => waitFor(() => predicate(frames), { what, timeoutMs }),
    close: () => controller.abort(),
  };
}

/** The `seq` of each `event` frame, in order. */
export function eventSeqs(frames: readonly SseFrame[]): number[] {
  return frames.filter((f) => f.event === "event").map((f) => (f.json as { seq: number }).seq);
}
