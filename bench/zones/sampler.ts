/**
 * Once a second, everything the analysis needs, read from outside the balancer's decisions: each
 * instance's own `/stats` (the demo app's counters: served, busy time, queue), and the balancer's
 * own view — Homeostat's attempt counters per instance (`/metrics`) and controller view
 * (`/v1/status`, `/v1/failover`), or HAProxy's sessions per server and server states (`show stat`).
 * An instance cut off by a network partition does not answer its `/stats` (null for that second).
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { WorkStats } from "../../examples/app/server.ts";
import { epochNow } from "./load.ts";

/** The demo app's `GET /stats` (examples/README.md). */
export type AppStats = WorkStats;

export interface InstanceReading {
  instance: string;
  slot: number;
  zone: string;
  /** ms from the load's t0, midway through the request. */
  at: number;
  /** null: nothing answered on the instance's port (not running). */
  stats: AppStats | null;
}

export interface StatusInstance {
  name: string;
  slot: number;
  zone: string;
  state: string;
}

export interface Sample {
  /** ms from t0 at which the sample was due. */
  due: number;
  instances: InstanceReading[];
  /** Proxy attempts per instance, all outcomes, cumulative (null: /metrics did not answer). */
  attempts: Record<string, number> | null;
  /** The controller's instances (null: /v1/status did not answer). */
  status: StatusInstance[] | null;
  /** `GET /v1/failover`, where the controller has it. */
  failover: unknown;
}

/** What the balancer says at one sample. */
export interface BalancerReading {
  attempts: Record<string, number> | null;
  status: StatusInstance[] | null;
  failover: unknown;
}

export interface SamplerTarget {
  /** Slot → port and zone for every slot the service may use. */
  slots: { slot: number; port: number; zone: string; instance: string }[];
  /** Read once per sample, next to the instances. */
  balancer: () => Promise<BalancerReading>;
}

const READ_TIMEOUT_MS = 800;

async function getJson<T>(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T | null }> {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
    const text = await response.text();
    return { status: response.status, body: response.ok ? (JSON.parse(text) as T) : null };
  } catch {
    return { status: 0, body: null };
  }
}

/** Sum of `homeostat_proxy_attempts_total` per instance label, from Prometheus text. */
export function attemptsByInstance(text: string): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("homeostat_proxy_attempts_total{")) continue;
    const instance = /instance="([^"]*)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (instance === undefined || !Number.isFinite(value)) continue;
    totals[instance] = (totals[instance] ?? 0) + value;
  }
  return totals;
}

export class Sampler {
  readonly samples: Sample[] = [];
  readonly #target: SamplerTarget;
  readonly #t0: number;
  #stopped = false;
  #loop: Promise<void> | null = null;

  constructor(target: SamplerTarget, t0: number) {
    this.#target = target;
    this.#t0 = t0;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async stop(): Promise<Sample[]> {
    this.#stopped = true;
    await this.#loop;
    return this.samples;
  }

  async #run(): Promise<void> {
    for (let k = 0; !this.#stopped; k++) {
      const due = k * 1000;
      // Pacing of the sampling schedule: one reading a second, on the load's own clock.
      const wait = this.#t0 + due - epochNow();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.#stopped) return;
      this.samples.push(await this.#sample(due));
    }
  }

  async #sample(due: number): Promise<Sample> {
    const readings = this.#target.slots.map(async (s): Promise<InstanceReading> => {
      const before = epochNow();
      const { body } = await getJson<AppStats>(`http://127.0.0.1:${s.port}/stats`);
      const after = epochNow();
      return {
        instance: s.instance,
        slot: s.slot,
        zone: s.zone,
        at: (before + after) / 2 - this.#t0,
        stats: body,
      };
    });
    const [instances, balancer] = await Promise.all([Promise.all(readings), this.#target.balancer()]);
    return { due, instances, ...balancer };
  }
}

/** Homeostat's view: the proxy's attempts per instance, `/v1/status`, `/v1/failover`. */
export function homeostatBalancer(apiPort: number, stateDir: string): () => Promise<BalancerReading> {
  const api = `http://127.0.0.1:${apiPort}`;
  let failoverMissing = false;
  // The admin token `up` wrote; read once it exists (the sampler may start before the controller).
  let token: string | undefined;
  const auth = (): Record<string, string> => {
    try {
      token ??= readFileSync(join(stateDir, "admin-token"), "utf8").trim();
    } catch {
      return {};
    }
    return { authorization: `Bearer ${token}` };
  };
  return async () => {
    const headers = auth();
    const metrics = (async () => {
      try {
        const response = await fetch(`${api}/metrics`, {
          headers,
          signal: AbortSignal.timeout(READ_TIMEOUT_MS),
        });
        return response.ok ? attemptsByInstance(await response.text()) : null;
      } catch {
        return null;
      }
    })();
    const status = getJson<{ services: { instances: StatusInstance[] }[] }>(`${api}/v1/status`, headers);
    const failover = failoverMissing ? null : getJson<unknown>(`${api}/v1/failover`, headers);
    const [attempts, statusDoc, failoverDoc] = await Promise.all([metrics, status, failover]);
    if (failoverDoc?.status === 404) failoverMissing = true;
    return {
      attempts,
      status:
        statusDoc.body?.services.flatMap((svc) =>
          svc.instances.map((i) => ({ name: i.name, slot: i.slot, zone: i.zone, state: i.state })),
        ) ?? null,
      failover: failoverDoc?.body ?? null,
    };
  };
}

/**
 * HAProxy's view: sessions assigned to each server (`stot`, which grows when HAProxy sends a
 * request to it, a retry included) as the attempts, and each server's check state (`UP` → ready).
 */
export function haproxyBalancer(
  stats: () => Promise<{ name: string; status: string; sessions: number }[] | null>,
  zoneOfSlot: (slot: number) => string,
): () => Promise<BalancerReading> {
  return async () => {
    const servers = await stats();
    if (servers === null) return { attempts: null, status: null, failover: null };
    return {
      attempts: Object.fromEntries(servers.map((s) => [s.name, s.sessions])),
      status: servers.map((s) => {
        const slot = Number(s.name.slice(s.name.lastIndexOf("-") + 1));
        return {
          name: s.name,
          slot,
          zone: zoneOfSlot(slot),
          state: s.status.startsWith("UP") ? "ready" : s.status.toLowerCase(),
        };
      }),
      failover: null,
    };
  };
}
