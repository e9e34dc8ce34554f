/** Small socket facts Node does not expose publicly, and a connect that can be awaited. */

import { connect, type Server, type Socket } from "node:net";

/**
 * The file descriptor of a listening server (null when it is not listening): what a successor
 * process inherits to take over the port. Node keeps it on the internal `_handle`; Unix only.
 */
export function listeningFd(server: Server): number | null {
  const handle = (server as unknown as { _handle?: { fd?: number } | null })._handle;
  return typeof handle?.fd === "number" && handle.fd >= 0 ? handle.fd : null;
}

/** Connect to the Unix socket at `path`; resolves once connected, rejects with the connect error. */
export function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}
