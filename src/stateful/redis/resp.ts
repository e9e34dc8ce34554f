/**
 * RESP2, the Redis wire protocol: enough of it for Homeostat to talk to redis-server (probes,
 * INFO, REPLICAOF, CLIENT PAUSE) and for the data plane to answer as a Sentinel. A parser that
 * takes bytes as they come and yields whole replies, and the encoders for both directions.
 * Kept to node:net and no dependency: the controller needs a dozen commands, each with a
 * deadline of its own, and a library's reconnect and offline-queue logic would hide exactly the
 * failures a probe must see.
 */

/** One RESP value. Errors are values too (`{ error }`): a probe wants to read them, not catch them. */
export type RespValue = string | number | null | RespError | RespValue[];

/** An error reply (`-ERR …`, `-READONLY …`, `-NOREPLICAS …`). */
export interface RespError {
  error: string;
}

export function isRespError(value: RespValue): value is RespError {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A command as Redis reads it: an array of bulk strings. */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/** A reply as a server writes it (the Sentinel port): strings go out as bulk strings. */
export function encodeReply(value: RespValue): Buffer {
  if (value === null) return Buffer.from("*-1\r\n");
  if (typeof value === "number") return Buffer.from(`:${value}\r\n`);
  if (typeof value === "string") {
    const bytes = Buffer.from(value);
    return Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n")]);
  }
  if (Array.isArray(value)) {
    return Buffer.concat([Buffer.from(`*${value.length}\r\n`), ...value.map(encodeReply)]);
  }
  return Buffer.from(`-${value.error.replace(/[\r\n]/g, " ")}\r\n`);
}

/** A status reply (`+OK`, `+PONG`). */
export function encodeStatus(text: string): Buffer {
  return Buffer.from(`+${text}\r\n`);
}

/** The most a single bulk string or array may claim: a peer claiming more is cut, not buffered. */
const MAX_BULK = 64 * 1024 * 1024;

/**
 * Incremental RESP2 parser: `push` bytes as they arrive, get back every reply completed so far.
 * Also reads inline commands (`PING\r\n`, what redis-cli and telnet send) when `inline` is set.
 */
export class RespParser {
  #buffer: Buffer = Buffer.alloc(0);
  readonly #inline: boolean;

  constructor(options: { inline?: boolean } = {}) {
    this.#inline = options.inline ?? false;
  }

  push(chunk: Buffer): RespValue[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const out: RespValue[] = [];
    for (;;) {
      const parsed = this.#parse(0);
      if (parsed === undefined) break;
      out.push(parsed.value);
      this.#buffer = this.#buffer.subarray(parsed.next);
    }
    return out;
  }

  #line(from: number): { text: string; next: number } | undefined {
    const end = this.#buffer.indexOf("\r\n", from);
    if (end === -1) {
      if (this.#buffer.length - from > 64 * 1024) throw new Error("RESP line too long");
      return undefined;
    }
    return { text: this.#buffer.toString("utf8", from + 1, end), next: end + 2 };
  }

  #parse(from: number): { value: RespValue; next: number } | undefined {
    if (from >= this.#buffer.length) return undefined;
    const type = String.fromCharCode(this.#buffer[from]!);
    if (!"+-:$*".includes(type)) {
      if (!this.#inline) throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
      const end = this.#buffer.indexOf("\n", from);
      if (end === -1) return undefined;
      const text = this.#buffer.toString("utf8", from, end).replace(/\r$/, "");
      return { value: text.split(/\s+/).filter((w) => w !== ""), next: end + 1 };
    }
    const line = this.#line(from);
    if (line === undefined) return undefined;
    switch (type) {
      case "+":
        return { value: line.text, next: line.next };
      case "-":
        return { value: { error: line.text }, next: line.next };
      case ":":
        return { value: Number(line.text), next: line.next };
      case "$": {
        const length = Number(line.text);
        if (length === -1) return { value: null, next: line.next };
        if (!Number.isInteger(length) || length < 0 || length > MAX_BULK) throw new Error("bad bulk length");
        if (this.#buffer.length < line.next + length + 2) return undefined;
        return {
          value: this.#buffer.toString("utf8", line.next, line.next + length),
          next: line.next + length + 2,
        };
      }
      default: {
        const count = Number(line.text);
        if (count === -1) return { value: null, next: line.next };
        if (!Number.isInteger(count) || count < 0 || count > MAX_BULK) throw new Error("bad array length");
        const items: RespValue[] = [];
        let next = line.next;
        for (let i = 0; i < count; i++) {
          const item = this.#parse(next);
          if (item === undefined) return undefined;
          items.push(item.value);
          next = item.next;
        }
        return { value: items, next };
      }
    }
  }
}

/** `INFO` text as a map of `key → value` (section headers and blank lines dropped). */
export function parseInfo(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon > 0) map.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return map;
}
