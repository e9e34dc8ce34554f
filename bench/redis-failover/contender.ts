/**
 * What the bench asks of a contender (Redis Sentinel, or Homeostat through one of its ways in),
 * and the store settings both run with.
 */

import type { Access } from "./writerProtocol.ts";

/** The settings Homeostat's store has and Sentinel's nodes copy. */
export interface StoreSettings {
  /** Homeostat's detection: a PING and a write probe every interval; `failures` in a row. */
  detection: { intervalMs: number; timeoutMs: number; failures: number };
  /** interval × failures + timeout: the time a dead primary takes to be declared failed. */
  detectionBudgetMs: number;
  minReplicasToWrite: number;
  minReplicasMaxLagS: number;
  persistence: "aof" | "rdb" | "none";
}

/** A signal target: the current primary's process. */
export interface Victim {
  port: number;
  signal(signal: NodeJS.Signals): boolean;
}

export interface Contender {
  /** The scenario name in the results (`sentinel`, `homeostat-endpoint`, `homeostat-sentinel`). */
  readonly name: string;
  readonly label: string;
  /** How the writer (and the final read) reach the primary. */
  access(): Access;
  /** The redis-server ports whose roles are watched. */
  dataPorts(): number[];
  /** Wait until the store is whole and in sync; returns the primary's port. */
  ready(timeoutMs: number): Promise<number>;
  /** The process serving `port` now. */
  victim(port: number): Promise<Victim>;
  /**
   * After a kill -9 and the failover: what the contender's world does to bring the member back,
   * done by `deadline` (epoch ms) at the latest.
   */
  afterKill(port: number, deadline: number): Promise<void>;
}
