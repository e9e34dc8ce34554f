/** Fleet files: loading, validation, the resolved model and the editor schema. */
export { durationMs } from "./duration.ts";
export { fleetOrThrow, type LoadResult, loadFleetFile, parseFleet } from "./loadFleet.ts";
export * from "./model.ts";
export { PORT_BANKS } from "./ports.ts";
export { fleetJsonSchema } from "./schema.ts";
export { formatSpecError, type SpecError } from "./specError.ts";
