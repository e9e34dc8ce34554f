/**
 * The fleet of the security-invariant end-to-end tests: a release whose guard fails open and one
 * whose guard holds, with invariants probed often.
 */

import { DEMO_PROBES, demoRelease } from "./e2e.ts";

/**
 * One service `api`, two demo-app instances over zones a and b behind front port `port`, with two
 * releases: v1-open (active), whose `/admin` answers without credentials (`AUTH_DISABLED=1`), and
 * v2, whose `/admin` refuses. Its invariants probe `/admin` and `/policy` every 300 ms. A deploy
 * goes to 50 % then 100 %, `stepDuration` a step, and soaks `soak`; `faultApi` turns on both
 * releases' fault API (the live switch of `POST /policy` needs it).
 */
export function invariantFleetYaml(options: {
  name: string;
  basePort: number;
  port: number;
  stepDuration: string;
  soak: string;
  faultApi?: boolean;
}): string {
  const env: Record<string, string> = options.faultApi === true ? { APP_ALLOW_FAULT_API: "1" } : {};
  return `version: 1
name: ${options.name}
defaults:
${DEMO_PROBES}
  restart: { stopGracePeriod: 2s, resetAfter: 2s }
  deploy:
    steps: [50, 100]
    stepDuration: ${options.stepDuration}
    stepDeadline: 20s
    soak: ${options.soak}
    analysis: { minRequests: 10, maxErrorRateIncrease: 5%, maxP99Ratio: 5, minP99Increase: 500ms }
  slo: { errorRate: 5%, p99: 2s }
  invariants:
    protectedPaths: [{ path: /admin }]
    policyHash: { path: /policy }
    interval: 300ms
    timeout: 300ms
services:
  api:
    replicas: 2
    basePort: ${options.basePort}
    port: ${options.port}
    placement: { zones: [zone-a, zone-b] }
    release: v1-open
    releases:
${demoRelease("v1-open", { ...env, AUTH_DISABLED: "1" })}
${demoRelease("v2", env)}
`;
}
