/**
 * The invariant probe: one round of security checks on one instance. Each protected path is
 * requested as an anonymous client would (no `Authorization`, no cookie, a fresh connection), and
 * the policy endpoint is read for the permission-policy hash. Failures are data, never
 * exceptions: a request that gets no answer reports `status: null`, which the evaluation reads as
 * "not checked" (never as "refused").
 */

import { request } from "node:http";
import type { InvariantsSpec } from "../spec/model.ts";
import type {
  InstanceObservation,
  PolicyObservation,
  ProtectedPathObservation,
} from "../verify/invariants.ts";
import { describeIoError, timeoutDetail } from "./probeTarget.ts";

/** A policy hash is short: more than this is not one (and is not read further). */
const MAX_POLICY_BODY_BYTES = 4096;

/** Where one instance listens. Instances listen on loopback only. */
export interface InvariantTarget {
  instance: string;
  port: number;
  release?: string;
  /** The policy hash the instance's release declares, if it declares one. */
  expectedPolicyHash?: string;
}

interface Answer {
  status: number | null;
  body: string;
  contentType: string;
  error?: string;
}

/**
 * One anonymous request on a dedicated socket. Resolves within `timeoutMs` (plus timer latency)
 * with the status and, when `readBody`, up to {@link MAX_POLICY_BODY_BYTES} of the body; never
 * rejects.
 */
function anonymousRequest(
  port: number,
  method: string,
  path: string,
  timeoutMs: number,
  readBody: boolean,
): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(answer);
    };
    // agent: false: no pooled connection (and nothing a previous request left on it).
    const req = request({
      host: "127.0.0.1",
      port,
      path,
      method,
      agent: false,
      headers: { "user-agent": "homeostat-invariant-probe", connection: "close" },
    });
    const timer = setTimeout(
      () => finish({ status: null, body: "", contentType: "", error: timeoutDetail(timeoutMs) }),
      timeoutMs,
    );
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      const contentType = String(res.headers["content-type"] ?? "");
      res.on("error", () => {});
      if (!readBody) {
        finish({ status, body: "", contentType });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_POLICY_BODY_BYTES) {
          finish({ status, body: "", contentType, error: `body larger than ${MAX_POLICY_BODY_BYTES} bytes` });
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => finish({ status, body: Buffer.concat(chunks).toString("utf8"), contentType }));
      // The instance answered, then cut the body short: an answer without a readable hash.
      res.on("aborted", () => finish({ status, body: "", contentType, error: "body cut short" }));
    });
    req.on("error", (error) =>
      finish({ status: null, body: "", contentType: "", error: describeIoError(error) }),
    );
    req.end();
  });
}

/**
 * The hash in a policy endpoint's answer: a JSON object's `hash` string (when the body is JSON),
 * else the body's text, trimmed. Null when there is none.
 */
export function policyHashOf(body: string, contentType: string): string | null {
  const text = body.trim();
  if (text === "") return null;
  if (contentType.includes("json") || text.startsWith("{")) {
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        const hash = (value as Record<string, unknown>).hash;
        return typeof hash === "string" && hash.trim() !== "" ? hash.trim() : null;
      }
      return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
    } catch {
      return null;
    }
  }
  // A hash is one token: a multi-line page (an HTML error page) is not one.
  return /\s/.test(text) ? null : text;
}

/** Request every protected path and the policy endpoint of one instance, concurrently. */
export async function probeInvariants(
  target: InvariantTarget,
  spec: InvariantsSpec,
): Promise<InstanceObservation> {
  const paths = spec.protectedPaths.map(async (entry): Promise<ProtectedPathObservation> => {
    const answer = await anonymousRequest(target.port, entry.method, entry.path, spec.timeoutMs, false);
    const observation: ProtectedPathObservation = {
      path: entry.path,
      method: entry.method,
      expect: entry.expect,
      status: answer.status,
    };
    if (answer.error !== undefined) observation.error = answer.error;
    return observation;
  });
  const policy = spec.policyHash === null ? null : readPolicy(target, spec.policyHash.path, spec.timeoutMs);
  const observation: InstanceObservation = {
    instance: target.instance,
    protectedPaths: await Promise.all(paths),
    policy: await policy,
  };
  if (target.release !== undefined) observation.release = target.release;
  return observation;
}

async function readPolicy(
  target: InvariantTarget,
  path: string,
  timeoutMs: number,
): Promise<PolicyObservation> {
  const answer = await anonymousRequest(target.port, "GET", path, timeoutMs, true);
  const observation: PolicyObservation = { path, hash: null };
  if (target.expectedPolicyHash !== undefined) observation.expected = target.expectedPolicyHash;
  if (answer.status === null) {
    observation.error = answer.error ?? "no answer";
    return observation;
  }
  observation.status = answer.status;
  if (answer.status < 200 || answer.status > 299) {
    observation.error = `status ${answer.status}`;
    return observation;
  }
  if (answer.error !== undefined) {
    observation.error = answer.error;
    return observation;
  }
  const hash = policyHashOf(answer.body, answer.contentType);
  if (hash === null) observation.error = "no hash in the answer";
  else observation.hash = hash;
  return observation;
}
