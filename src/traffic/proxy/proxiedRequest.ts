/**
 * The request path for one client request: framing → criticality → failover shedding gate →
 * admission → attempts (pick, faults, forward, hedge a slow one, retry with backoff under the
 * budget) → response. See docs/data-plane.md.
 */

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import type { Criticality, Permit, Rejection } from "../contracts.ts";
import { jitteredBackoff } from "../policies/backoff.ts";
import { blankRequestRecord, type RequestRecord, type RequestResult } from "../stats/index.ts";
import { type FaultPlan, planFaults } from "./attemptFaults.ts";
import { CRITICALITY_HEADER, parseCriticality } from "./criticality.ts";
import { type DeadlineEntry, type DeadlineList, Deadlines } from "./deadlineList.ts";
import type { EndpointPool } from "./endpointPool.ts";
import { FAILOVER_SHED_RETRY_AFTER_SECONDS, failoverSheds } from "./failoverShedding.ts";
import { framingProblem } from "./framing.ts";
import {
  ATTEMPTS_HEADER,
  clientResponseHeaders,
  FAULT_HEADER,
  HEDGED_HEADER,
  INSTANCE_HEADER,
  incomingRequestId,
  REQUEST_ID_HEADER,
  upstreamRequestHeaders,
} from "./headers.ts";
import { type HedgeOwner, HedgeTimer } from "./hedgeTimer.ts";
import {
  type AttemptSummary,
  sendBadFraming,
  sendJson,
  sendNoUpstream,
  sendShed,
  sendUpstreamFailure,
} from "./localResponses.ts";
import type { ProxyRuntime } from "./proxyRuntime.ts";
import { type BodyPlan, bodyPlan, readBody } from "./requestBody.ts";
import { newRequestId } from "./requestId.ts";
import { type AttemptFailure, mayRetry } from "./retryPolicy.ts";
import {
  CLIENT_GONE,
  type ExchangeEnd,
  type ExchangeOwner,
  failureOf,
  HEDGE_LOST,
  REQUEST_TIMEOUT,
  UpstreamExchange,
  type UpstreamHeaders,
} from "./upstreamExchange.ts";

const NOTHING_TRIED: ReadonlySet<string> = new Set();
const FAILOVER_SHED_REJECTION = {
  reason: "failover-shed",
  retryAfterSeconds: FAILOVER_SHED_RETRY_AFTER_SECONDS,
} as const;
const NOOP = (): void => {};
/** Reused for every request's record: the stats read it synchronously and keep nothing of it. */
const REQUEST_RECORD: RequestRecord = blankRequestRecord();
const CLIENT_CLOSED_STATUS = 499;

/** Proxy one request; never rejects (every failure becomes a response or a closed connection). */
export function proxyRequest(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse): void {
  const forwarding = new ProxiedRequest(rt, req, res).run();
  // Answered at once (bad framing, no upstream, shed by the failover gate): nothing to wait for.
  if (forwarding === null) return;
  forwarding.catch((error: unknown) => {
    // A bug, not a traffic condition: answer 502 if still possible rather than leave the client hanging.
    process.emitWarning(`homeostat proxy: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    if (!res.headersSent) sendJson(res, 502, { error: "proxy-error" }, {}, true);
    else res.destroy();
  });
}

class ProxiedRequest implements ExchangeOwner, DeadlineEntry, HedgeOwner {
  readonly res: ServerResponse;
  private readonly req: IncomingMessage;
  private readonly rt: ProxyRuntime;
  private readonly startedAt = performance.now();
  private criticality: Criticality = "default";
  private requestId = "";
  private plan: BodyPlan = { kind: "none" };
  private body: Buffer | null = null;
  private path = "/";
  private upstreamHeaders: string[] = [];
  private permit: Permit | null = null;
  private attempts = 0;
  /** The instance of the first attempt; a Set of tried instances exists only once a retry is due. */
  private firstTried: string | null = null;
  private tried: Set<string> | null = null;
  private failed: AttemptSummary[] | null = null;
  private exchange: UpstreamExchange | null = null;
  /** The pool of the attempt in progress (the one a hedge would back up); null between attempts. */
  private attemptPool: EndpointPool | null = null;
  /** The hedge delay of this request; 0: never hedged (see Hedging.delayFor). */
  private hedgeDelayMs = 0;
  /** Armed when the attempt in progress may be hedged; allocated once per hedgeable request. */
  private hedgeTimer: HedgeTimer | null = null;
  /** A hedge in flight beside the attempt in progress. */
  private hedgeExchange: UpstreamExchange | null = null;
  private hedges = 0;
  /** A response head went to the client: any other attempt is cancelled. */
  private answered = false;
  /** The last 5xx dropped was granted its retry when it arrived. */
  private retryGranted = false;
  private clientGone = false;
  private deadlineHit = false;
  // The request deadline (a DeadlineEntry of the proxy's shared lists: no timer of its own).
  deadlineAt = 0;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  deadlineList: DeadlineList | null = null;
  private abortController: AbortController | null = null;
  private wake: (() => void) | null = null;
  private cancelRead: (() => void) | null = null;
  /** The status the client got, for the stats (0: none yet). */
  private status = 0;
  /** Set when the proxy answered itself; null: the status says how it went. */
  private result: RequestResult | null = null;
  private dropped = false;

  constructor(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse) {
    this.rt = rt;
    this.req = req;
    this.res = res;
  }

  /**
   * Answer at once (and return null), or start forwarding: the promise settles when the request is
   * done. Two async frames for the whole request (`forward` ends it, whatever happens): in the
   * common case (admitted at once, answered on the first attempt) the only outside promise it
   * waits for is the upstream exchange's.
   */
  run(): Promise<void> | null {
    const { rt, req, res } = this;
    const framing = framingProblem(req);
    if (framing !== null) {
      sendBadFraming(res, framing);
      this.record("client-error", 400);
      return null;
    }
    const parsed = parseCriticality(req.headers[CRITICALITY_HEADER]);
    if (parsed.unrecognised) rt.unrecognisedCriticality();
    this.criticality = parsed.criticality;
    this.requestId = incomingRequestId(req) ?? newRequestId();
    const path = targetPath(req.url ?? "/");
    if (path === null) {
      sendJson(res, 400, { error: "bad-request", reason: "request target is not a path" }, {}, true);
      this.record("client-error", 400);
      return null;
    }
    this.path = path;
    this.plan = bodyPlan(req);
    // A client that aborts mid-body makes the request emit `error`: the close handler deals with it.
    req.on("error", NOOP);
    // `on`, not `once`: a response closes once, and `once` would allocate a wrapper per request.
    res.on("close", this.onResponseClose);

    if (rt.table.size === 0) {
      sendNoUpstream(res, "no-endpoints", this.requestId, this.plan.kind !== "none");
      this.record("no-upstream", 503);
      return null;
    }
    const shedding = rt.shedding;
    if (shedding !== null && failoverSheds(shedding, this.criticality, rt.random)) {
      this.failoverShed();
      return null;
    }

    rt.requestStarted();
    return this.forward();
  }

  private async forward(): Promise<void> {
    try {
      await this.admitAndForward();
    } finally {
      this.finish();
      this.rt.requestEnded();
    }
  }

  /** Refused by the failover shedding gate: never admitted, never retried, never sent upstream. */
  private failoverShed(): void {
    const { rt } = this;
    rt.stats.recordShed(rt.service, this.criticality, "failover-shed");
    sendShed(this.res, FAILOVER_SHED_REJECTION, this.criticality, this.requestId, this.plan.kind !== "none");
    this.record("shed", 503);
  }

  private async admitAndForward(): Promise<void> {
    const { rt, res } = this;
    // A signal only matters to a request that will wait in the queue: under the limit (the
    // common case) none is allocated. Same test as the controller's, in the same tick.
    const admission = rt.admission;
    let decision: Permit | Rejection | null = admission.tryAcquire(this.criticality);
    if (decision === null) {
      this.abortController = new AbortController();
      decision = await admission.acquire(this.criticality, this.abortController.signal);
    }
    if (!decision.admitted) {
      rt.stats.recordShed(rt.service, this.criticality, decision.reason);
      this.status = 503;
      this.result = "shed";
      if (!this.clientGone)
        sendShed(res, decision, this.criticality, this.requestId, this.plan.kind !== "none");
      return;
    }
    this.permit = decision;
    if (this.clientGone) return;
    rt.budget.recordRequest();

    // The deadline covers reading a replayable body too: a client trickling it must not hold a permit.
    rt.deadlines.arm(this, rt.traffic.requestTimeoutMs);
    if (this.plan.kind === "buffer") {
      this.body = await readBody(this.req, this.plan.length, (cancel) => {
        this.cancelRead = cancel;
      });
      this.cancelRead = null;
      if (this.body === null) {
        this.dropped = true;
        if (!this.clientGone) {
          this.status = 408;
          sendJson(
            res,
            408,
            { error: "request-timeout", reason: "request body not received in time" },
            {},
            true,
          );
        }
        return;
      }
    }
    this.upstreamHeaders = upstreamRequestHeaders(this.req, this.requestId, false);
    this.hedgeDelayMs = rt.hedging.delayFor(this.req.method ?? "GET", this.plan.kind !== "stream");

    // Attempts until one is delivered, or retrying is not allowed (then an error answer).
    let last: AttemptFailure | null = null;
    for (;;) {
      if (this.clientGone || this.deadlineHit) break;
      const pick = rt.balancer.pick(rt.now(), rt.random, this.triedSoFar(), rt.table.inFlightOf);
      const pool = pick.ok ? rt.table.get(pick.endpoint.instance) : undefined;
      if (pool === undefined) {
        if (this.attempts > 0) break;
        this.noUpstream(pick.ok ? "no-endpoints" : pick.reason);
        return;
      }
      this.attempts++;
      if (this.firstTried === null) this.firstTried = pool.endpoint.instance;
      else this.tried!.add(pool.endpoint.instance);
      this.attemptPool = pool;
      this.armHedge();
      const started = this.startAttempt(pool);
      let end: ExchangeEnd;
      if (started instanceof UpstreamExchange) {
        end = await started.ended;
        this.exchangeEnded(started, end);
      } else {
        end = await started;
      }
      this.attemptPool = null;
      if (this.hedgeTimer !== null) Deadlines.disarm(this.hedgeTimer);
      let endPool = pool;
      const hedge = this.hedgeExchange;
      if (hedge !== null) {
        this.hedgeExchange = null;
        if (end.kind === "delivered") this.hedgeOutlived(hedge);
        else {
          // This attempt failed on its own, or was cancelled because the hedge answered: the
          // hedge decides (with a failure of its own, the retry rules apply as usual).
          if (end.failure.cancelled !== true) this.noteFailure(pool, end.failure);
          end = await hedge.ended;
          this.exchangeEnded(hedge, end);
          endPool = hedge.pool;
        }
      }
      if (end.kind === "delivered") {
        this.dropped = !end.complete;
        return;
      }
      last = end.failure;
      this.noteFailure(endPool, end.failure);
      if (this.clientGone) break;
      // A discarded 5xx response may have been granted its retry when it arrived; otherwise ask now.
      const granted = this.retryGranted;
      this.retryGranted = false;
      if (!granted && !this.wantsRetry(end.failure)) break;
      const delayMs = jitteredBackoff(this.attempts, rt.traffic.retries.backoff, rt.random);
      if (delayMs > 0) await this.pause(delayMs);
    }
    this.answerFailure(last);
  }

  private noteFailure(pool: EndpointPool, failure: AttemptFailure): void {
    if (this.failed === null) this.failed = [];
    this.failed.push(summary(pool, failure));
  }

  /** Arm the hedge timer for the attempt just started, when it may be hedged. */
  private armHedge(): void {
    const delayMs = this.hedgeDelayMs;
    if (delayMs === 0) return;
    const rt = this.rt;
    if (this.hedges >= rt.hedging.maxPerRequest || this.attempts >= rt.traffic.retries.maxAttempts) return;
    if (this.hedgeTimer === null) this.hedgeTimer = new HedgeTimer(this);
    this.hedgeTimer.attempt = this.attempts;
    rt.deadlines.arm(this.hedgeTimer, delayMs);
  }

  /**
   * The attempt in progress is still waiting after the hedge delay (called from the check phase,
   * after the sockets were read). It is a sign for the stall watch either way; a hedge goes to
   * another instance when the request may send one more attempt, the retry budget grants it, and
   * the balancer has an instance not tried yet (one without fault rules: see docs/data-plane.md).
   */
  onHedgeDue(attempt: number): void {
    const pool = this.attemptPool;
    if (pool === null || attempt !== this.attempts || this.answered || this.hedgeExchange !== null) return;
    if (this.clientGone || this.deadlineHit) return;
    const primary = this.exchange;
    // Answered (a response is streaming, or a 5xx is being discarded) or failed: nothing to back up.
    if (primary !== null && !primary.waiting) return;
    const rt = this.rt;
    rt.slowAttempt(pool);
    if (this.hedges >= rt.hedging.maxPerRequest || this.attempts >= rt.traffic.retries.maxAttempts) return;
    const tried = this.triedSoFar();
    const pick = rt.balancer.pick(rt.now(), rt.random, tried, rt.table.inFlightOf);
    if (!pick.ok || tried.has(pick.endpoint.instance)) return;
    const target = rt.table.get(pick.endpoint.instance);
    if (target === undefined || rt.faults.match(target.endpoint).length > 0) return;
    // Checked last: asking charges the budget.
    if (!rt.budget.tryAcquireRetry()) {
      rt.hedging.refusedByBudget++;
      return;
    }
    this.hedges++;
    this.attempts++;
    this.tried!.add(target.endpoint.instance);
    rt.recordHedge(false);
    this.hedgeExchange = this.dispatch(target, performance.now(), true);
  }

  /**
   * The attempt in progress delivered while `hedge` was out: the hedge was cancelled then, or had
   * ended on its own before (a failure other than a 5xx is reported now: nobody awaited it).
   */
  private hedgeOutlived(hedge: UpstreamExchange): void {
    const failure = hedge.failed;
    if (failure === null || failure.cancelled === true || failure.outcome === "http-5xx") return;
    if (!this.clientGone) this.rt.reportAttempt(hedge.pool, failure.outcome, undefined, hedge.latencyMs);
  }

  /** `winner` (null: an injected answer) went to the client: the other attempt is not needed. */
  private cancelOther(winner: UpstreamExchange | null): void {
    this.answered = true;
    const hedge = this.hedgeExchange;
    if (hedge === null) return;
    const rt = this.rt;
    if (winner !== hedge) {
      if (hedge.waiting) {
        hedge.cancel();
        rt.hedging.cancelled++;
      }
      return;
    }
    rt.recordHedge(true);
    const primary = this.exchange;
    if (primary !== null) {
      if (primary.waiting) {
        primary.cancel();
        rt.hedging.cancelled++;
      }
    } else if (this.attemptPool !== null) {
      // Held by a fault rule (latency, blackhole): it sees `answered` when it wakes.
      rt.hedging.cancelled++;
      this.wake?.();
    }
  }

  /** Whether an attempt of this request other than `exchange` is still waiting for its answer. */
  private otherWaiting(exchange: UpstreamExchange | null): boolean {
    const hedge = this.hedgeExchange;
    if (hedge === null) return false;
    if (exchange !== hedge) return hedge.waiting;
    // The attempt in progress: an exchange, or held by a fault rule (no exchange yet).
    return this.attemptPool !== null && (this.exchange === null || this.exchange.waiting);
  }

  /** The instances tried so far, for the balancer to avoid (a Set only once there was a retry). */
  private triedSoFar(): ReadonlySet<string> {
    if (this.firstTried === null) return NOTHING_TRIED;
    if (this.tried === null) this.tried = new Set([this.firstTried]);
    return this.tried;
  }

  /**
   * Start one attempt against `pool`: the real exchange, or — when fault rules match — the
   * faults first (a promise of how the attempt ended).
   */
  private startAttempt(pool: EndpointPool): UpstreamExchange | Promise<ExchangeEnd> {
    const { rt } = this;
    const rules = rt.faults.match(pool.endpoint);
    if (rules.length > 0) {
      const plan = planFaults(rules, rt.random);
      if (plan.delayMs > 0 || plan.effect.kind !== "none") return this.attemptWithFaults(pool, plan);
    }
    return this.dispatch(pool, performance.now());
  }

  private async attemptWithFaults(pool: EndpointPool, plan: FaultPlan): Promise<ExchangeEnd> {
    const startedAt = performance.now();
    // Held by a fault, the attempt waits for an answer like a real one (stall detection sees it).
    pool.waitStarted(startedAt);
    const injected = await this.injectFault(pool, plan, this.rt.traffic.retries.perTryTimeoutMs, startedAt);
    pool.waitEnded(performance.now(), injected !== "forward" && answeredByFault(injected));
    if (injected !== "forward") return injected;
    const exchange = this.dispatch(pool, startedAt);
    const end = await exchange.ended;
    this.exchangeEnded(exchange, end);
    return end;
  }

  /**
   * Hand the request to the endpoint's pool; `startedAt` is when the attempt began. A `hedge` is
   * the caller's to keep; otherwise the exchange is the attempt in progress.
   */
  private dispatch(pool: EndpointPool, startedAt: number, hedge = false): UpstreamExchange {
    const { rt } = this;
    const perTryMs = rt.traffic.retries.perTryTimeoutMs;
    const exchange = new UpstreamExchange(this, pool, perTryMs, startedAt, rt.deadlines);
    if (!hedge) this.exchange = exchange;
    const options: Dispatcher.DispatchOptions = {
      path: this.path,
      method: this.req.method as Dispatcher.HttpMethod,
      headers: this.upstreamHeaders,
      body: this.body ?? (this.plan.kind === "stream" ? this.req : null),
      headersTimeout: perTryMs,
      bodyTimeout: rt.traffic.requestTimeoutMs,
    };
    pool.pool.dispatch(options, exchange);
    return exchange;
  }

  /** `exchange` ended: a failure is reported (5xx ones were, on arrival). */
  private exchangeEnded(exchange: UpstreamExchange, end: ExchangeEnd): void {
    if (this.exchange === exchange) this.exchange = null;
    // A client that left, or our own cancellation, says nothing of the upstream.
    if (
      end.kind === "failed" &&
      end.failure.outcome !== "http-5xx" &&
      end.failure.cancelled !== true &&
      !this.clientGone
    ) {
      this.rt.reportAttempt(exchange.pool, end.failure.outcome, undefined, exchange.latencyMs);
    }
  }

  /**
   * The fault rules' effect on this attempt, as if the upstream misbehaved: the outcome is
   * reported like a real one. `forward`: only a delay, the attempt goes on to the upstream (the
   * delay counts in its latency).
   */
  private async injectFault(
    pool: EndpointPool,
    plan: FaultPlan,
    perTryMs: number,
    started: number,
  ): Promise<ExchangeEnd | "forward"> {
    const { rt } = this;
    const elapsed = (): number => performance.now() - started;
    pool.begin();
    if (plan.delayMs > 0) await this.pause(Math.min(plan.delayMs, perTryMs));
    if (this.answered) return this.cancelledByHedge(pool);
    if (!this.clientGone && !this.deadlineHit && plan.delayMs >= perTryMs) {
      // A delay as long as the per-try timeout is a timeout, as it would be upstream.
      return this.injectedFailure(pool, { outcome: "timeout" }, elapsed());
    }
    const effect = plan.effect;
    if (effect.kind === "blackhole" && !this.clientGone && !this.deadlineHit) {
      await this.pause(Math.max(0, perTryMs - elapsed()));
      if (this.answered) return this.cancelledByHedge(pool);
    }
    if (this.clientGone) {
      pool.endQuietly();
      return { kind: "failed", failure: failureOf(CLIENT_GONE, false) };
    }
    if (this.deadlineHit || effect.kind === "blackhole") {
      return this.injectedFailure(pool, { outcome: "timeout" }, elapsed());
    }
    if (effect.kind === "none") {
      pool.endQuietly();
      return "forward";
    }
    if (effect.kind === "reset") return this.injectedFailure(pool, { outcome: "reset" }, elapsed());

    const latencyMs = elapsed();
    const status = effect.status;
    rt.reportAttempt(pool, status >= 500 ? "http-5xx" : "success", status, latencyMs);
    pool.end(latencyMs, false);
    const failure: AttemptFailure = { outcome: "http-5xx", status };
    if (status >= 500) {
      // As for a real answer (see onResponseHead): a hedge still out stands in for the retry.
      if (this.otherWaiting(null) && this.transient(failure)) return { kind: "failed", failure };
      if (this.wantsRetry(failure)) {
        this.retryGranted = true;
        return { kind: "failed", failure };
      }
    }
    this.cancelOther(null);
    this.status = status;
    sendJson(
      this.res,
      status,
      { error: "injected fault", fault: effect.rule.id },
      {
        [ATTEMPTS_HEADER]: this.attempts,
        [INSTANCE_HEADER]: pool.endpoint.instance,
        [REQUEST_ID_HEADER]: this.requestId,
        [FAULT_HEADER]: effect.rule.id,
        ...(this.hedges > 0 ? { [HEDGED_HEADER]: 1 } : {}),
      },
      this.plan.kind === "stream",
    );
    return { kind: "delivered", complete: true };
  }

  /** The hedge answered while a fault rule held this attempt: it ends without a word on the instance. */
  private cancelledByHedge(pool: EndpointPool): ExchangeEnd {
    pool.endQuietly();
    return { kind: "failed", failure: failureOf(HEDGE_LOST, true) };
  }

  private injectedFailure(pool: EndpointPool, failure: AttemptFailure, latencyMs: number): ExchangeEnd {
    this.rt.reportAttempt(pool, failure.outcome, undefined, latencyMs);
    pool.end(latencyMs, true);
    return { kind: "failed", failure };
  }

  onResponseHead(
    exchange: UpstreamExchange,
    status: number,
    statusText: string,
    headers: UpstreamHeaders,
  ): boolean {
    const pool = exchange.pool;
    if (status >= 500) {
      this.rt.reportAttempt(pool, "http-5xx", status, exchange.latencyMs);
      const failure: AttemptFailure = {
        outcome: "http-5xx",
        status,
        shedByUpstream: headers["x-homeostat-shed"] !== undefined,
      };
      if (!this.clientGone && !this.answered) {
        // The other attempt of a hedged request stands in for the retry: no new one, no charge.
        if (this.otherWaiting(exchange) && this.transient(failure)) return false;
        if (this.wantsRetry(failure)) {
          this.retryGranted = true;
          return false;
        }
      }
    } else {
      this.rt.reportAttempt(pool, "success", status, exchange.latencyMs);
    }
    // Nothing to write to, or the other attempt's answer is out already: drop it.
    if (this.clientGone || this.answered) return false;
    this.cancelOther(exchange);
    const out: OutgoingHttpHeaders = clientResponseHeaders(headers);
    out[ATTEMPTS_HEADER] = this.attempts;
    out[INSTANCE_HEADER] = pool.endpoint.instance;
    if (this.hedges > 0) out[HEDGED_HEADER] = 1;
    if (out[REQUEST_ID_HEADER] === undefined) out[REQUEST_ID_HEADER] = this.requestId;
    this.status = status;
    if (statusText === "") this.res.writeHead(status, out);
    else this.res.writeHead(status, statusText, out);
    // Without a length the body may trickle (server-sent events): the client gets the head now.
    if (out["content-length"] === undefined) this.res.flushHeaders();
    return true;
  }

  /** Whether the retry rules see `failure` as worth another attempt, attempts and budget aside. */
  private transient(failure: AttemptFailure): boolean {
    return mayRetry({
      method: this.req.method ?? "GET",
      replayable: this.plan.kind !== "stream",
      attempts: 0,
      maxAttempts: 1,
      failure,
    });
  }

  /** Retry rules, then the deadline, then the budget (which charges the retry). */
  private wantsRetry(failure: AttemptFailure): boolean {
    const traffic = this.rt.traffic;
    const retryable = mayRetry({
      method: this.req.method ?? "GET",
      replayable: this.plan.kind !== "stream",
      attempts: this.attempts,
      maxAttempts: traffic.retries.maxAttempts,
      failure,
    });
    return retryable && !this.deadlineHit && !this.clientGone && this.rt.budget.tryAcquireRetry();
  }

  private noUpstream(reason: "no-endpoints" | "all-ejected"): void {
    this.status = 503;
    this.result = "no-upstream";
    sendNoUpstream(this.res, reason, this.requestId, this.plan.kind === "stream");
  }

  private answerFailure(last: AttemptFailure | null): void {
    if (this.clientGone) {
      this.dropped = true;
      return;
    }
    const timedOut = this.deadlineHit || last?.outcome === "timeout";
    const status = timedOut ? 504 : 502;
    this.status = status;
    this.result = timedOut ? "timeout" : "failed";
    this.dropped = true;
    sendUpstreamFailure(
      this.res,
      status,
      this.failed ?? [],
      this.requestId,
      this.plan.kind === "stream",
      this.hedges > 0,
    );
  }

  /** Wait `ms`, or less if the deadline passes or the client leaves. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  private readonly onResponseClose = (): void => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.abortController?.abort();
    this.exchange?.abort(CLIENT_GONE);
    this.hedgeExchange?.abort(CLIENT_GONE);
    this.wake?.();
  };

  /** The request deadline passed (called by the deadline list). */
  onDeadline(): void {
    this.deadlineHit = true;
    this.cancelRead?.();
    this.exchange?.abort(REQUEST_TIMEOUT);
    this.hedgeExchange?.abort(REQUEST_TIMEOUT);
    this.wake?.();
  }

  private finish(): void {
    Deadlines.disarm(this);
    if (this.hedgeTimer !== null) Deadlines.disarm(this.hedgeTimer);
    this.permit?.release({ latencyMs: performance.now() - this.startedAt, dropped: this.dropped });
    if (this.result !== null) this.record(this.result, this.status);
    else if (this.status === 0) {
      // The client left before any answer (nginx's 499). Counted as a failure: clients mostly
      // leave because the answer was too slow.
      this.record("failed", CLIENT_CLOSED_STATUS);
    } else {
      const status = this.status;
      this.record(status >= 500 ? "upstream-5xx" : status >= 400 ? "client-error" : "ok", status);
    }
  }

  private record(result: RequestResult, status: number): void {
    const record = REQUEST_RECORD;
    record.service = this.rt.service;
    record.criticality = this.criticality;
    record.result = result;
    record.status = status;
    record.latencyMs = performance.now() - this.startedAt;
    record.attempts = this.attempts;
    record.retried = this.attempts > 1;
    this.rt.recordRequest(record);
  }
}

/** An injected end that is an answer from the "upstream" (an error status), as stall detection counts it. */
function answeredByFault(end: ExchangeEnd): boolean {
  return end.kind === "delivered" || end.failure.outcome === "http-5xx";
}

function summary(pool: EndpointPool, failure: AttemptFailure): AttemptSummary {
  const out: AttemptSummary = { instance: pool.endpoint.instance, outcome: failure.outcome };
  if (failure.status !== undefined) out.status = failure.status;
  return out;
}

/** The origin-form path to send upstream; absolute-form targets are reduced to it. */
function targetPath(url: string): string | null {
  if (url.startsWith("/")) return url;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return null;
  }
}
