/** The CLI's client for the controller's local API. */

import { ERROR_CODES, type ErrorCode, HomeostatError } from "../errors.ts";

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

export function apiClient(port: number, timeoutMs = 5000): ApiClient {
  const base = `http://127.0.0.1:${port}`;
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      // Every change goes as JSON, `{}` when there is nothing to say: the API refuses any other
      // (a web page could send it: CSRF). `Host` is left to fetch: 127.0.0.1:PORT, as the API wants.
      const change = method !== "GET";
      response = await fetch(`${base}${path}`, {
        method,
        headers: change ? { "content-type": "application/json" } : {},
        body: change ? JSON.stringify(body ?? {}) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
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
      throw new HomeostatError(code, error?.message ?? `${method} ${path}: HTTP ${response.status}`);
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
        const response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
        await response.body?.cancel();
        return response.ok;
      } catch {
        return false;
      }
    },
  };
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  if (cause?.code) return cause.code;
  if (error instanceof Error && error.name === "TimeoutError") return "timed out";
  return error instanceof Error ? error.message : String(error);
}
