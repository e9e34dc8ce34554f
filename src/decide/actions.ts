import type { Reason } from "./reasons.ts";

/** What the decision core asks for. Executed by `act/`; each one journaled with its reason. */
export type Action =
  | { type: "start"; instance: string; service: string; slot: number; release: string; reason: Reason }
  | {
      type: "stop";
      instance: string;
      service: string;
      /** Whether the slot should be started again afterwards (restart) or left empty. */
      afterStop: "restart" | "leave-stopped";
      reason: Reason;
    }
  | { type: "wait"; instance: string; service: string; until: number | null; reason: Reason };
