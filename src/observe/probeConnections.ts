/**
 * Kept-alive probe connections to one instance. A fresh TCP connection per probe was most of what
 * watching an instance cost the controller (issue 15: the connect, the handshake and the close
 * run in the controller's process, kernel side included); one owner per instance *run* (a
 * `Prober` watch, a zone-probe record) reuses its connections between probes and closes them when
 * it lets the instance go, so a restarted instance — a new watch — is always probed on new
 * connections, even on the same port.
 *
 * What reuse cannot change: a probe still fails on its own timeout (the connection it used is then
 * destroyed, never reused), a connection the server closed or reset is never reused (and a probe
 * whose reused connection turns out dead before any byte of an answer tries once more on a fresh
 * one, within the same timeout), and a connection is reused only while it is young: at most
 * {@link MAX_IDLE_MS} idle (below the 5 s keep-alive timeout of Node's HTTP server, so the
 * server's close rarely races a probe) and {@link MAX_AGE_MS} old. The age bound is what sees an
 * instance that stops accepting connections while still answering on open ones: within
 * MAX_AGE_MS its probes are on new connections again.
 */

import { connect, type Socket } from "node:net";

/** A connection idle longer than this is closed instead of reused. */
export const MAX_IDLE_MS = 4_000;
/** A connection older than this is closed after its probe instead of being reused. */
export const MAX_AGE_MS = 60_000;
/** Idle connections kept per port (readiness and liveness may run at the same time). */
const MAX_IDLE_PER_PORT = 2;

/**
 * The one buffer every probe connection reads into (`onread`): a read then allocates nothing and
 * skips the stream machinery (`push`, the 'data' event): the Prober alone against 60 instances
 * went from 0.077 and 0.076 to 0.055 and 0.064 ms of CPU per probe, paired (issue 15). Sharing it
 * is safe because a read is handed to its connection's user synchronously and the user copies
 * what it keeps before returning (see {@link ConnectionUser}).
 */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * What a connection reports to the probe using it. Events arrive only while the connection is
 * lent out; an idle connection that hears anything (data, an end, an error) is closed.
 */
export interface ConnectionUser {
  onConnect(): void;
  /**
   * Bytes read. `chunk` is a view of a buffer shared by every connection and overwritten by the
   * next read: copy what must outlive the call.
   */
  onData(chunk: Buffer): void;
  /** The peer ended the connection, or it failed (`error` set), or it was destroyed. */
  onEnd(error: Error | null): void;
}

/**
 * One TCP connection with its event listeners installed once: a probe that borrows it only sets
 * `user`, so reuse adds and removes no listener.
 */
export class ProbeConnection {
  readonly socket: Socket;
  readonly port: number;
  readonly createdAt: number;
  /** Set when the connection was used before this borrower: its failure may be staleness. */
  reused = false;
  idleSince = 0;
  #user: ConnectionUser | null = null;
  #dead = false;
  #owner: ProbeConnections | null;

  constructor(host: string, port: number, owner: ProbeConnections | null, now: number) {
    this.port = port;
    this.createdAt = now;
    this.#owner = owner;
    // Throws synchronously on an invalid port: the probe reports it as its failure.
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (length) => {
          this.#read(readBuffer.subarray(0, length));
          return true;
        },
      },
    });
    // Never what keeps the process alive: a probe in flight is held by its own timeout timer, an
    // idle connection by nothing (like the prober's timers). Set once, not per probe: a ref and an
    // unref per probe were two calls into the handle for nothing.
    this.socket.unref();
    this.socket.on("connect", () => this.#user?.onConnect());
    this.socket.on("end", () => this.#ended(null));
    this.socket.on("error", (error) => this.#ended(error));
    this.socket.on("close", () => this.#ended(null));
  }

  get dead(): boolean {
    return this.#dead || this.socket.destroyed || !this.socket.writable;
  }

  /** Lend the connection to `user` (a probe): it alone hears the connection's events. */
  lend(user: ConnectionUser): void {
    this.#user = user;
  }

  /** Take it back from its user; it no longer hears anything. */
  reclaim(): void {
    this.#user = null;
  }

  destroy(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#user = null;
    this.socket.destroy();
    this.#owner?.forget(this);
    this.#owner = null;
  }

  #read(chunk: Buffer): void {
    if (this.#user !== null) this.#user.onData(chunk);
    // Nobody asked: an idle connection that speaks is in a state no probe should inherit.
    else this.destroy();
  }

  #ended(error: Error | null): void {
    const user = this.#user;
    this.destroy();
    user?.onEnd(error);
  }
}

/**
 * The kept-alive connections of one instance run, by port. `close()` when the run ends (unwatch):
 * idle connections are destroyed at once, those lent out when their probe ends.
 */
export class ProbeConnections {
  readonly #idle = new Map<number, ProbeConnection[]>();
  readonly #now: () => number;
  #closed = false;

  /** `now`: a monotonic ms clock (default `performance.now`). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A connection to `host:port`: an idle one still fit for reuse, else a new one (connecting). */
  acquire(host: string, port: number): ProbeConnection {
    const now = this.#now();
    const idle = this.#idle.get(port);
    while (idle !== undefined && idle.length > 0) {
      // The most recently used first: the others age out.
      const connection = idle.pop()!;
      if (connection.dead || now - connection.idleSince > MAX_IDLE_MS) {
        connection.destroy();
        continue;
      }
      connection.reused = true;
      return connection;
    }
    return this.fresh(host, port);
  }

  /** A new connection to `host:port`, owned by this set (returned to it by `release`). */
  fresh(host: string, port: number): ProbeConnection {
    return new ProbeConnection(host, port, this.#closed ? null : this, this.#now());
  }

  /**
   * A probe is done with `connection`. `reusable`: its last answer ended cleanly, with nothing
   * left unread, on a connection both sides keep open; otherwise (or when the set is closed, the
   * connection too old, or enough are idle already) it is destroyed.
   */
  release(connection: ProbeConnection, reusable: boolean): void {
    connection.reclaim();
    const now = this.#now();
    if (!reusable || this.#closed || connection.dead || now - connection.createdAt > MAX_AGE_MS) {
      connection.destroy();
      return;
    }
    let idle = this.#idle.get(connection.port);
    if (idle === undefined) {
      idle = [];
      this.#idle.set(connection.port, idle);
    }
    if (idle.length >= MAX_IDLE_PER_PORT) {
      connection.destroy();
      return;
    }
    connection.idleSince = now;
    idle.push(connection);
  }

  /** Drop `connection` from the idle lists (it was destroyed). */
  forget(connection: ProbeConnection): void {
    const idle = this.#idle.get(connection.port);
    if (idle === undefined) return;
    const at = idle.indexOf(connection);
    if (at >= 0) idle.splice(at, 1);
    if (idle.length === 0) this.#idle.delete(connection.port);
  }

  /** Idle connections now (for tests and diagnostics). */
  idleCount(): number {
    let n = 0;
    for (const idle of this.#idle.values()) n += idle.length;
    return n;
  }

  /** The instance run is over: no connection of it is reused again. */
  close(): void {
    this.#closed = true;
    for (const idle of [...this.#idle.values()]) for (const connection of [...idle]) connection.destroy();
    this.#idle.clear();
  }
}
