/**
 * The one snapshot the proxy bench's fake controller pushes to the data-plane process: the bench
 * service on its port, its resolved traffic settings (read from the bench fleet file, as the
 * controller reads them), and one endpoint, the upstream. No weights, zone shares, shedding or
 * faults: what a controller sends for a single healthy instance.
 */

import type { Snapshot } from "../../src/dataplane/feedProtocol.ts";
import type { TrafficSpec } from "../../src/spec/index.ts";

export interface BenchSnapshotInput {
  service: string;
  port: number;
  upstreamPort: number;
  traffic: TrafficSpec;
  /** The fake controller's pid and start time, as a real controller identifies itself. */
  controller: { pid: number; startedAt: number };
  issuedAt: number;
  version?: number;
}

export function benchSnapshot(input: BenchSnapshotInput): Snapshot {
  return {
    version: input.version ?? 1,
    issuedAt: input.issuedAt,
    fleet: "proxy-bench",
    controller: input.controller,
    services: [
      {
        name: input.service,
        port: input.port,
        traffic: input.traffic as unknown as Record<string, unknown>,
        endpoints: [
          {
            instance: `${input.service}-0`,
            service: input.service,
            release: "v1",
            zone: "zone-a",
            host: "host-a",
            address: "127.0.0.1",
            port: input.upstreamPort,
          },
        ],
        weights: input.traffic.weights ?? null,
        zoneShares: null,
        shedding: null,
      },
    ],
    faults: [],
  };
}

/**
 * Reports as they arrive, counted per measured run: how many, and the longest wait between two
 * (the data plane sends one every 250 ms; a loop saturated by the load delays its timer).
 */
export class ReportTally {
  #total = 0;
  #count = 0;
  #maxGapMs = 0;
  #last: number | null = null;

  /** A report arrived at `atMs` (the harness's clock). */
  note(atMs: number): void {
    if (this.#last !== null) this.#maxGapMs = Math.max(this.#maxGapMs, atMs - this.#last);
    this.#last = atMs;
    this.#count++;
    this.#total++;
  }

  get total(): number {
    return this.#total;
  }

  /**
   * Since the previous call: reports received and the longest gap between two, counting the wait
   * from the last one to `nowMs` (a data plane that stopped reporting shows as one long gap).
   */
  take(nowMs: number): { reports: number; maxGapMs: number } {
    const sinceLast = this.#last === null ? 0 : nowMs - this.#last;
    const window = { reports: this.#count, maxGapMs: Math.max(this.#maxGapMs, sinceLast) };
    this.#count = 0;
    this.#maxGapMs = 0;
    return window;
  }
}
