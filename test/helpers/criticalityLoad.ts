/**
 * Open-loop load through a service port with a fixed mix of criticalities
 * (`x-homeostat-criticality`), for the shedding tests: every request's criticality, status, why
 * it was shed (the `x-homeostat-shed` header; null when it was not) and who answered it.
 */

export type Criticality = "critical" | "default" | "sheddable";

export interface CriticalityOutcome {
  /** Epoch ms when the request was sent, and when it was answered (or given up). */
  at: number;
  endedAt: number;
  criticality: Criticality;
  /** HTTP status, or 0 when no answer came within the request's deadline. */
  status: number;
  /** `x-homeostat-shed` of the answer (e.g. `failover-shed`), or null. */
  shed: string | null;
  /** The demo app's `x-instance` header: the instance that answered, or null. */
  instance: string | null;
}

export interface CriticalityLoad {
  outcomes: CriticalityOutcome[];
  /** Stop sending and wait for the requests in flight. */
  stop(): Promise<void>;
}

/**
 * About `rate` requests/s, sent every 50 ms, in a fixed order of tenths: `mix` gives how many of
 * every ten requests are critical, default and sheddable (they must add up to 10). Each request
 * gets `timeoutMs` to be answered.
 */
export function criticalityLoad(o: {
  port: number;
  rate: number;
  mix: Record<Criticality, number>;
  timeoutMs: number;
  path?: string;
}): CriticalityLoad {
  const order: Criticality[] = [];
  for (const c of ["critical", "default", "sheddable"] as const)
    for (let i = 0; i < o.mix[c]; i++) order.push(c);
  if (order.length !== 10) throw new Error(`criticalityLoad: the mix must add up to 10, not ${order.length}`);
  const outcomes: CriticalityOutcome[] = [];
  const pending = new Set<Promise<void>>();
  const perTick = o.rate / 20;
  let carry = 0;
  let n = 0;
  const timer = setInterval(() => {
    carry += perTick;
    for (; carry >= 1; carry--) {
      const criticality = order[n++ % order.length]!;
      const at = Date.now();
      const request = fetch(`http://127.0.0.1:${o.port}${o.path ?? "/"}`, {
        headers: { "x-homeostat-criticality": criticality },
        signal: AbortSignal.timeout(o.timeoutMs),
      })
        .then(async (r) => {
          await r.arrayBuffer();
          outcomes.push({
            at,
            endedAt: Date.now(),
            criticality,
            status: r.status,
            shed: r.headers.get("x-homeostat-shed"),
            instance: r.headers.get("x-instance"),
          });
        })
        .catch(() => {
          outcomes.push({ at, endedAt: Date.now(), criticality, status: 0, shed: null, instance: null });
        });
      pending.add(request);
      void request.finally(() => pending.delete(request));
    }
  }, 50);
  return {
    outcomes,
    async stop() {
      clearInterval(timer);
      await Promise.all([...pending]);
    },
  };
}
