/** An HTTP server on 127.0.0.1 (a free port) for a test, and its closing, connections and all. */

import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";

export interface LocalHttpServer {
  port: number;
  close(): Promise<void>;
}

export async function listenLocal(handler: RequestListener): Promise<LocalHttpServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
