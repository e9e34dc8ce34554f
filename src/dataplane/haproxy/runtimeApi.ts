/**
 * A client of HAProxy's CLI on a Unix socket: the workers' Runtime API (stats socket) or the
 * master CLI. One connection per command, in HAProxy's non-interactive mode: write the command,
 * read until HAProxy closes. Bounded by a deadline, so a wedged HAProxy cannot hang the caller.
 */

import { connect } from "node:net";
import { HomeostatError } from "../../errors.ts";

/**
 * Answers that mean the command did nothing. HAProxy answers errors as text on the same stream
 * as successes; these are the 2.6 wordings of the errors Homeostat's commands can meet.
 */
const FAILURES: readonly RegExp[] = [
  /^Unknown command/m,
  /No such (server|backend|frontend|proxy)/i,
  /^Require /m,
  /Permission denied/i,
  /^Unknown map identifier/m,
  /^Unable to /m,
  /^Invalid /m,
  /^'set server <srv>/m,
  /entry not found/i,
  /^Failed to /m,
  /^Absolute weight/m,
  /^Relative weight/m,
];

/** The default deadline of one command. */
export const RUNTIME_API_TIMEOUT_MS = 5_000;

export class RuntimeApi {
  readonly socketPath: string;
  readonly #timeoutMs: number;

  /** `socketPath`: the admin (stats) socket or the master socket. */
  constructor(socketPath: string, o: { timeoutMs?: number } = {}) {
    this.socketPath = socketPath;
    this.#timeoutMs = o.timeoutMs ?? RUNTIME_API_TIMEOUT_MS;
  }

  /**
   * Send one command (several may be joined with `;`) and return HAProxy's whole answer. Rejects
   * with `HS_HAPROXY_RUNTIME` when the socket cannot be reached, the deadline passes, or the
   * answer is one of HAProxy's error messages.
   */
  async command(cmd: string): Promise<string> {
    if (/[\r\n]/.test(cmd))
      throw new HomeostatError("HS_HAPROXY_RUNTIME", "a Runtime API command is one line");
    const answer = await this.#exchange(cmd);
    const failure = FAILURES.find((pattern) => pattern.test(answer));
    if (failure !== undefined) {
      throw new HomeostatError("HS_HAPROXY_RUNTIME", `HAProxy refused "${cmd}": ${answer.trim()}`, {
        details: { socket: this.socketPath, command: cmd, answer },
      });
    }
    return answer;
  }

  #exchange(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(this.socketPath);
      const fail = (why: string, cause?: unknown): void => {
        socket.destroy();
        reject(
          new HomeostatError("HS_HAPROXY_RUNTIME", `HAProxy's CLI at ${this.socketPath}: ${why} ("${cmd}")`, {
            details: { socket: this.socketPath, command: cmd },
            cause,
          }),
        );
      };
      socket.setTimeout(this.#timeoutMs, () => fail(`no answer within ${this.#timeoutMs}ms`));
      socket.on("connect", () => socket.end(`${cmd}\n`));
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("error", (error) => fail(error.message, error));
      socket.on("close", (hadError) => {
        if (!hadError) resolve(Buffer.concat(chunks).toString("utf8"));
      });
    });
  }
}
