import type { TrafficSpec } from "../../spec/model.ts";
import type { Balancer } from "../balance/balancer.ts";
import type { AttemptOutcome, SheddingShares } from "../contracts.ts";
import type { FaultRegistry } from "../faults.ts";
import type { AdmissionController } from "../policies/admissionController.ts";
import type { RetryBudget } from "../policies/retryBudget.ts";
import type { AttemptRecord, RequestRecord, TrafficStats } from "../stats/index.ts";
import type { Deadlines } from "./deadlineList.ts";
import type { EndpointPool } from "./endpointPool.ts";
import type { EndpointTable } from "./endpointTable.ts";
import type { Hedging } from "./hedging.ts";

/** What one service's requests share: the service proxy's parts, as the request path sees them. */
export interface ProxyRuntime {
  readonly service: string;
  /** Read per request: a settings change applies from the next request on. */
  readonly traffic: TrafficSpec;
  readonly balancer: Balancer;
  readonly table: EndpointTable;
  readonly admission: AdmissionController;
  readonly budget: RetryBudget;
  readonly stats: TrafficStats;
  readonly faults: FaultRegistry;
  /** Who may be hedged and after how long; the hedge counters. */
  readonly hedging: Hedging;
  /** Request and per-try deadlines, shared by the service's requests (one timer per duration). */
  readonly deadlines: Deadlines;
  /** The failover shedding gate's shares, or null (no gate: the common case, one null check). */
  readonly shedding: SheddingShares | null;
  /** Epoch ms, for the balancer's ejection clock. */
  readonly now: () => number;
  readonly random: () => number;
  /** One attempt's outcome: to the balancer, the stats and the health watch. */
  reportAttempt(
    pool: EndpointPool,
    outcome: AttemptOutcome,
    status: number | undefined,
    latencyMs: number,
  ): void;
  /**
   * An attempt to `pool` is still waiting after the hedge delay (hedged or not): a sign that the
   * instance may be stalled.
   */
  slowAttempt(pool: EndpointPool): void;
  /** A hedge was sent (`won` false), or its answer came first (`won` true). */
  recordHedge(won: boolean): void;
  /** A request is done (answered, or abandoned by its client). `record` is reused: read it, do not keep it. */
  recordRequest(record: RequestRecord): void;
  requestStarted(): void;
  requestEnded(): void;
  /** Counts a `x-homeostat-criticality` value that is not a known class. */
  unrecognisedCriticality(): void;
}

export type { AttemptRecord };
