import type { EventRecord } from "../store/index.ts";

/** Where the controller reports each event after it is stored (the foreground console, tests). */
export interface ControllerEvents {
  onEvent(event: EventRecord): void;
}
