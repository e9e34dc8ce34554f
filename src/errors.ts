/**
 * The error catalogue. Every error Homeostat raises on purpose has a stable code, a category that
 * maps to a CLI exit code and an HTTP status, and a message written for the person reading it.
 */

export type ErrorCategory = "user" | "conflict" | "not-found" | "internal" | "unavailable";

interface CatalogueEntry {
  category: ErrorCategory;
  summary: string;
  /** The HTTP status when the category's (see {@link httpStatusFor}) would say less. */
  httpStatus?: number;
}

export const ERROR_CODES = {
  HS_SPEC_INVALID: { category: "user", summary: "the fleet file is not valid" },
  HS_SPEC_UNREADABLE: { category: "user", summary: "the fleet file cannot be read" },
  HS_USAGE: { category: "user", summary: "the command line is not valid" },
  HS_STATE_CORRUPT: { category: "internal", summary: "the state database is damaged" },
  HS_STATE_TOO_NEW: {
    category: "user",
    summary: "the state database was written by a newer Homeostat",
  },
  HS_STATE_LOCKED: { category: "conflict", summary: "another controller owns this state directory" },
  HS_STATE_OTHER_FLEET: {
    category: "conflict",
    summary: "the state directory belongs to another fleet file",
  },
  HS_CONTROLLER_UNREACHABLE: { category: "unavailable", summary: "no controller answers on the API port" },
  HS_CONFLICT: { category: "conflict", summary: "the request conflicts with work in progress" },
  HS_APPLY_REFUSED: { category: "conflict", summary: "the spec change was refused: nothing was applied" },
  HS_ROLLBACK_REFUSED: { category: "conflict", summary: "the rollback was refused by its safety checks" },
  HS_PAUSED: {
    category: "conflict",
    summary:
      "automation is paused: a manual action needs --override with a reason (`homeostat resume` ends the pause)",
  },
  HS_FAILOVER_REFUSED: { category: "conflict", summary: "the failover was refused by its safety rules" },
  HS_NOT_FOUND: { category: "not-found", summary: "no such object" },
  HS_BAD_REQUEST: { category: "user", summary: "the request is not valid" },
  HS_DRIVER_START_FAILED: { category: "internal", summary: "an instance could not be started" },
  HS_INTERNAL: { category: "internal", summary: "an unexpected internal error" },
  HS_STATE_FOREIGN: {
    category: "user",
    summary: "the state file is a database, but not a Homeostat state database",
  },
  HS_STORE_UNAVAILABLE: {
    category: "unavailable",
    summary: "the PostgreSQL store did not answer (down, unreachable, or over its deadline)",
  },
  HS_STORE_ERROR: { category: "internal", summary: "the store refused a statement" },
  HS_NOT_LEADER: {
    category: "unavailable",
    summary: "this controller is a follower: changes go to the leader, whose address the error names",
  },
  HS_FENCED: {
    category: "conflict",
    summary: "an order carried a fencing token older than the newest seen: it came from a deposed leader",
  },
  HS_DRIVER_STOP_FAILED: { category: "internal", summary: "an instance's processes survived SIGKILL" },
  HS_POLICY_INVALID: { category: "user", summary: "a resilience policy's options are not valid" },
  HS_PORT_IN_USE: { category: "conflict", summary: "a port Homeostat must listen on is already taken" },
  HS_INSTANCE_PORT_HELD: {
    category: "conflict",
    summary: "an instance's port is held by a process that is not that instance",
  },
  HS_HOST_REFUSED: {
    category: "user",
    httpStatus: 403,
    summary: "the request's Host is not the address the API listens on (DNS rebinding)",
  },
  HS_ORIGIN_REFUSED: {
    category: "user",
    httpStatus: 403,
    summary: "a change requested from another origin (a web page: CSRF)",
  },
  HS_NOT_JSON: {
    category: "user",
    httpStatus: 415,
    summary: "a change must be sent as a JSON body (Content-Type: application/json)",
  },
  HS_UNAUTHENTICATED: {
    category: "user",
    httpStatus: 401,
    summary: "the request has no valid token (Authorization: Bearer …)",
  },
  HS_FORBIDDEN: {
    category: "user",
    httpStatus: 403,
    summary: "the token's role may not do this",
  },
  HS_MALFORMED_JSON: {
    category: "user",
    summary: "the request's body is not well-formed JSON (or is empty, or names __proto__/constructor)",
  },
  HS_BODY_TOO_LARGE: {
    category: "user",
    httpStatus: 413,
    summary: "the request's body is larger than the API accepts",
  },
  HS_URI_TOO_LONG: {
    category: "user",
    httpStatus: 414,
    summary: "the request's URL is longer than the API accepts",
  },
  HS_HEADERS_TOO_LARGE: {
    category: "user",
    httpStatus: 431,
    summary: "the request's headers are larger than the API accepts",
  },
  HS_METHOD_NOT_ALLOWED: {
    category: "user",
    httpStatus: 405,
    summary: "the URL names a route, but not with this method",
  },
  HS_TOO_MANY_STREAMS: {
    category: "unavailable",
    summary: "as many event streams are open as the controller serves at once",
  },
  HS_HAPROXY_MISSING: {
    category: "user",
    summary: "a service uses the haproxy engine, but no haproxy binary was found (HOMEOSTAT_HAPROXY or PATH)",
  },
  HS_HAPROXY_CONFIG: {
    category: "internal",
    summary: "HAProxy rejected the configuration Homeostat rendered",
  },
  HS_HAPROXY_RUNTIME: {
    category: "unavailable",
    summary: "the managed HAProxy did not do what its master or Runtime API was asked",
  },
  HS_ROLLBACK_NOT_RUN: {
    category: "conflict",
    summary: "a rollback targets only a release this service has run; anything else is a deploy",
  },
  HS_SWITCHOVER_NOT_CAUGHT_UP: {
    category: "conflict",
    summary: "the replica did not catch up with the paused primary in time: writes resumed, nothing changed",
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a catalogued code. `details` is machine-readable context (for `--json` and the API). */
export class HomeostatError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options?: { details?: unknown; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HomeostatError";
    this.code = code;
    this.details = options?.details;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code].category;
  }
}

/**
 * Process exit codes: 0 ok, 1 user error (including "no controller is running" and "that state
 * directory is taken": things the user can act on), 2 internal error (a bug or a damaged store).
 */
export function exitCodeFor(error: unknown): 1 | 2 {
  if (error instanceof HomeostatError) return error.category === "internal" ? 2 : 1;
  return 2;
}

export function httpStatusFor(error: unknown): number {
  if (!(error instanceof HomeostatError)) return 500;
  const entry: CatalogueEntry = ERROR_CODES[error.code];
  if (entry.httpStatus !== undefined) return entry.httpStatus;
  switch (error.category) {
    case "user":
      return 400;
    case "not-found":
      return 404;
    case "conflict":
      return 409;
    case "unavailable":
      return 503;
    case "internal":
      return 500;
  }
}
