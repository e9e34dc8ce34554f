/**
 * The CLI's client for the controller's local API. It sends the token found by
 * ./tokenLookup.ts (`--token`, `$HOMEOSTAT_TOKEN`, the state directory's admin token, or the
 * pointer `homeostat up` left for the port), and reaches the API where that pointer says
 * (`https` with the controller's certificate when it serves TLS).
 */

import { readFileSync } from "node:fs";
import { Agent, type Dispatcher } from "undici";
import { ERROR_CODES, type ErrorCode, HomeostatError } from "../errors.ts";
import {
  type CommandCredentials,
  commandLineCredentials,
  findToken,
  readControllerPointer,
  type TokenSearch,
} from "./tokenLookup.ts";

export const DEFAULT_API_PORT = 7070;

export interface ApiClient {
  readonly base: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  put<T>(path: string, body?: unknown): Promise<T>;
  delete<T>(path: string): Promise<T>;
  /** True if a controller answers `/healthz`. */
  alive(): Promise<boolean>;
}

export interface ApiClientOptions {
  /** Per request; 5 s by default. */
  timeoutMs?: number;
  /** The token (else `--token`/`$HOMEOSTAT_TOKEN`/`stateDir`/the port's pointer). */
  token?: string;
  /** A state directory whose `admin-token` to use. */
  stateDir?: string;
}

/** A client for the API on `port` (see the module comment for where it finds its token). */
export function apiClient(port: number, options: ApiClientOptions = {}): ApiClient {
  const timeoutMs = options.timeoutMs ?? 5000;
  const pointer = readControllerPointer(port);
  const base = pointer?.url ?? `http://127.0.0.1:${port}`;
  // A self-signed certificate is trusted when it is the one `up` was given for this port.
  const dispatcher: Dispatcher | undefined =
    base.startsWith("https:") && pointer?.caFile !== undefined ? trusting(pointer.caFile) : undefined;
  let search: TokenSearch | undefined;
  const credentials = (): TokenSearch => {
    const given: CommandCredentials = { ...commandLineCredentials() };
    if (options.token !== undefined) given.token = options.token;
    if (options.stateDir !== undefined) given.stateDir = options.stateDir;
    search ??= findToken(port, given);
    return search;
  };
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    const { token } = credentials();
    try {
      // Every change goes as JSON, `{}` when there is nothing to say: the API refuses any other
      // (a web page could send it: CSRF). `Host` is left to fetch: 127.0.0.1:PORT, as the API wants.
      const change = method !== "GET";
      const headers: Record<string, string> = change ? { "content-type": "application/json" } : {};
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      response = await fetch(`${base}${path}`, {
        method,
        headers,
        body: change ? JSON.stringify(body ?? {}) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
        ...(dispatcher === undefined ? {} : { dispatcher }),
      } as RequestInit);
    } catch (error) {
      throw new HomeostatError(
        "HS_CONTROLLER_UNREACHABLE",
        `no Homeostat controller answers on ${base} (${causeOf(error)}). Start one with \`homeostat up FLEET.yaml\`, or pass --api-port. Its data plane may still be serving: \`homeostat dataplane status FLEET.yaml\` asks it.`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : {};
    } catch {
      throw new HomeostatError(
        "HS_INTERNAL",
        `${method} ${path}: the controller answered ${response.status} with non-JSON`,
      );
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } }).error;
      // Keep the server's catalogued code (HS_ROLLBACK_REFUSED, HS_CONFLICT, …): scripts match on it.
      const code: ErrorCode =
        error?.code !== undefined && Object.hasOwn(ERROR_CODES, error.code)
          ? (error.code as ErrorCode)
          : response.status < 500
            ? "HS_BAD_REQUEST"
            : "HS_INTERNAL";
      const message = error?.message ?? `${method} ${path}: HTTP ${response.status}`;
      if (code === "HS_UNAUTHENTICATED")
        throw new HomeostatError(code, withTokenAdvice(message, credentials()));
      throw new HomeostatError(code, message);
    }
    return parsed as T;
  }
  return {
    base,
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    put: (path, body) => call("PUT", path, body),
    delete: (path) => call("DELETE", path),
    async alive() {
      try {
        const response = await fetch(`${base}/healthz`, {
          signal: AbortSignal.timeout(1000),
          ...(dispatcher === undefined ? {} : { dispatcher }),
        } as RequestInit);
        await response.body?.cancel();
        return response.ok;
      } catch {
        return false;
      }
    },
  };
}

/** A dispatcher that trusts the certificate in `caFile` (the one `up --tls-cert` was given). */
function trusting(caFile: string): Dispatcher {
  try {
    return new Agent({ connect: { ca: readFileSync(caFile) } });
  } catch (error) {
    throw new HomeostatError(
      "HS_USAGE",
      `cannot read the API's TLS certificate ${caFile}, named by the pointer \`homeostat up\` wrote (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}

/** The server's 401 message, plus where the CLI looked for a token and what to do. */
function withTokenAdvice(message: string, search: TokenSearch): string {
  const found =
    search.token === undefined
      ? `No token was found (looked at: ${search.looked.join("; ")}).`
      : `The token from ${search.source} was refused.`;
  return `${message}. ${found} Run the command on the machine where \`homeostat up\` runs (it writes <state dir>/admin-token and a pointer for its API port), pass --state-dir DIR, or give a token with --token or $HOMEOSTAT_TOKEN (\`homeostat token create\` makes one).`;
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  if (cause?.code) return cause.code;
  if (error instanceof Error && error.name === "TimeoutError") return "timed out";
  return error instanceof Error ? error.message : String(error);
}
