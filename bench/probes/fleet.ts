/**
 * The fleet a new user would write after `homeostat init`: services of a bare node:http server (the
 * starter's own, run by the Node Homeostat runs on), each with a front port, readiness and liveness
 * HTTP probes on the same interval.
 */

export interface ProbeFleetShape {
  services: number;
  replicas: number;
  intervalMs: number;
  timeoutMs: number;
  /** Instance ports: service k uses basePort + k × 2 × replicas … (+ 2 × replicas − 1). */
  basePort: number;
  /** Front ports: frontPort + k. */
  frontPort: number;
}

/** The service names: svc-0, svc-1, … */
export function serviceNames(shape: ProbeFleetShape): string[] {
  return Array.from({ length: shape.services }, (_, k) => `svc-${k}`);
}

export function probeFleetYaml(shape: ProbeFleetShape): string {
  const services = serviceNames(shape).map(
    (name, k) => `  ${name}:
    replicas: ${shape.replicas}
    basePort: ${shape.basePort + k * 2 * shape.replicas}
    port: ${shape.frontPort + k}
    release: v1
    releases:
      v1:
        command: node
        args:
          - -e
          - |
            require("node:http")
              .createServer((req, res) => res.end("ok\\n"))
              .listen(Number(process.env.PORT), "127.0.0.1");
    probes:
      readiness:
        http: { path: /ready }
        interval: ${shape.intervalMs}ms
        timeout: ${shape.timeoutMs}ms
      liveness:
        http: { path: /healthz }
        interval: ${shape.intervalMs}ms
        timeout: ${shape.timeoutMs}ms
        failureThreshold: 3
`,
  );
  return `# bench:probes — ${shape.services} services × ${shape.replicas} instances, readiness + liveness every ${shape.intervalMs} ms
version: 1
name: probes-bench

services:
${services.join("")}`;
}

/** Probes per second the fleet asks for once every instance is ready (readiness + liveness). */
export function expectedProbeRate(shape: ProbeFleetShape): number {
  return (shape.services * shape.replicas * 2 * 1000) / shape.intervalMs;
}
