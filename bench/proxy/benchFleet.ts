/**
 * The tiny fleet file the proxy bench reads Homeostat's traffic settings from: the spec loader's
 * defaults, except the admission limit.
 */

/**
 * The only settings changed from the defaults. Admission must not be what limits throughput: the
 * default adaptive limit starts at 20 per instance and would queue wrk's 50 connections behind a
 * single upstream, so the limit is fixed well above any concurrency the bench offers.
 */
export const TRAFFIC_OVERRIDES = "limits: { maxConcurrentPerInstance: 1024, adaptive: false }";

/**
 * The tiny fleet the traffic settings are read from (its instances are never started).
 * @param engine the service's `traffic.engine` (`embedded`, the default, is not written)
 */
export function benchFleetYaml(
  proxyPort: number,
  upstreamPort: number,
  engine: "embedded" | "haproxy" = "embedded",
): string {
  return `version: 1
name: proxy-bench
services:
  bench:
    replicas: 1
    basePort: ${upstreamPort}
    port: ${proxyPort}
    placement: { zones: [zone-a] }
    traffic:
      ${TRAFFIC_OVERRIDES}${engine === "embedded" ? "" : `\n      engine: ${engine}`}
    release: v1
    releases:
      v1:
        command: "true"
`;
}
