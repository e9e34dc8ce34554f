/**
 * A steady request stream through a service port for e2e tests: `connections` keep-alive loops,
 * each pacing its requests to reach about `rate` requests/s in total, recording every outcome.
 * Bounded in time by whoever stops it; every request has a client timeout.
 */

import { Agent, request } from "undici";

export interface LoadOutcome {
  /** Epoch ms when the request was sent and when it ended. */
  sentAt: number;
  endedAt: number;
  /** HTTP status, or 0 when the request failed without one. */
  status: number;
  instance: string | null;
  attempts: number;
  hedged: boolean;
  error: string | null;
}

export interface SteadyLoad {
  outcomes: LoadOutcome[];
  /** Outcomes sent in [from, to) epoch ms. */
  between(from: number, to: number): LoadOutcome[];
  /** Stop sending and wait for the requests in flight. */
  stop(): Promise<void>;
}

export function steadyLoad(options: {
  port: number;
  rate: number;
  connections: number;
  method?: "GET" | "POST";
  path?: string;
  timeoutMs?: number;
}): SteadyLoad {
  const agent = new Agent({ connections: options.connections, keepAliveTimeout: 4_000, pipelining: 1 });
  const outcomes: LoadOutcome[] = [];
  const gapMs = (1000 * options.connections) / options.rate;
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const sentAt = Date.now();
      const outcome: LoadOutcome = {
        sentAt,
        endedAt: 0,
        status: 0,
        instance: null,
        attempts: 0,
        hedged: false,
        error: null,
      };
      try {
        const response = await request(`http://127.0.0.1:${options.port}${options.path ?? "/"}`, {
          method: options.method ?? "GET",
          dispatcher: agent,
          headersTimeout: options.timeoutMs ?? 5_000,
          bodyTimeout: options.timeoutMs ?? 5_000,
          ...(options.method === "POST"
            ? { body: "{}", headers: { "content-type": "application/json" } }
            : {}),
        });
        await response.body.text();
        outcome.status = response.statusCode;
        outcome.instance = header(response.headers["x-homeostat-instance"]);
        outcome.attempts = Number(header(response.headers["x-homeostat-attempts"]) ?? 0);
        outcome.hedged = header(response.headers["x-homeostat-hedged"]) !== null;
      } catch (error) {
        outcome.error = (error as { code?: string }).code ?? String(error);
      }
      outcome.endedAt = Date.now();
      outcomes.push(outcome);
      const wait = sentAt + gapMs - Date.now();
      if (wait > 0 && running) await new Promise((r) => setTimeout(r, wait));
    }
  };
  const loops = Array.from({ length: options.connections }, () => loop());
  return {
    outcomes,
    between: (from, to) => outcomes.filter((o) => o.sentAt >= from && o.sentAt < to),
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

/** Outcomes that are not a 2xx answer, described for an assertion message. */
export function failures(outcomes: readonly LoadOutcome[]): string[] {
  return outcomes
    .filter((o) => o.status < 200 || o.status >= 300)
    .map(
      (o) =>
        `${new Date(o.sentAt).toISOString()} status ${o.status} ${o.error ?? ""} via ${o.instance ?? "?"}`,
    );
}

function header(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}
