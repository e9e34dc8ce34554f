import type { TrafficSpec } from "../../spec/model.ts";
import type { Balancer } from "../balance/balancer.ts";
import type { AttemptOutcome } from "../contracts.ts";
import type { FaultRegistry } from "../faults.ts";
import type { AdmissionController } from "../policies/admissionController.ts";
import type { RetryBudget } from "../policies/retryBudget.ts";
import type { AttemptRecord, RequestRecord, TrafficStats } from "../stats/index.ts";
import type { EndpointPool } from "./endpointPool.ts";
import type { EndpointTable } from "./endpointTable.ts";

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
  /** A request is done (answered, or abandoned by its client). */
  recordRequest(record: RequestRecord): void;
  requestStarted(): void;
  requestEnded(): void;
  /** Counts a `x-homeostat-criticality` value that is not a known class. */
  unrecognisedCriticality(): void;
}

export type { AttemptRecord };
