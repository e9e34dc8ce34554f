/**
 * nginx and HAProxy in front of the three instances, each at its best for a hung instance with
 * what it ships (nginx open source: passive failure marking only; HAProxy: active checks plus
 * passive observation). The report prints them as written.
 *
 * The instances answer `GET /work?ms=5` in ~6 ms, so `timeoutMs` (250 ms by default) is far above
 * a healthy answer and far below the client's 5 s: a request stuck on the hung instance gives up
 * there and goes to another one.
 */

import { join } from "node:path";

export interface ProxyConfigInput {
  port: number;
  upstreamPorts: number[];
  /** nginx `proxy_read_timeout` / `proxy_send_timeout`, HAProxy `timeout server`. */
  timeoutMs: number;
}

/**
 * nginx, one worker: retry on another server after an error or a timeout (`proxy_next_upstream`,
 * up to 3 tries within 1 s), connect timeout 100 ms, a server marked failed after 1 failure for
 * 5 s (`max_fails=1 fail_timeout=5s`, in a shared `zone`), a keep-alive pool to the upstreams.
 */
export function nginxConfig(input: ProxyConfigInput & { prefix: string }): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `  ${kind}_temp_path ${join(input.prefix, "tmp", kind)};`)
    .join("\n");
  return `worker_processes 1;
daemon off;
master_process off;
pid ${join(input.prefix, "nginx.pid")};
error_log ${join(input.prefix, "error.log")} error;

events {
  worker_connections 4096;
}

http {
  access_log off;
${temp}

  upstream app {
    zone app 64k;
${input.upstreamPorts.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join("\n")}
    keepalive 64;
    keepalive_requests 1000000;
  }

  server {
    listen 127.0.0.1:${input.port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 100ms;
      proxy_send_timeout ${input.timeoutMs}ms;
      proxy_read_timeout ${input.timeoutMs}ms;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_next_upstream_timeout 1s;
    }
  }
}
`;
}

/**
 * HAProxy, one thread: active HTTP checks every 200 ms (`/ready`, timeout 150 ms, down after 2,
 * up after 1: Homeostat's readiness probe), passive observation of every answer (`observe layer7`,
 * 3 errors → marked down), `retry-on all-retryable-errors` with `retries 3` and `option redispatch
 * 1` (every retry to another server), `timeout server` at `timeoutMs`.
 */
export function haproxyConfig(input: ProxyConfigInput & { socket: string }): string {
  return `global
  nbthread 1
  maxconn 8000
  stats socket ${input.socket} mode 600 level admin

defaults
  mode http
  option http-keep-alive
  http-reuse safe
  timeout connect 100ms
  timeout client 30s
  timeout server ${input.timeoutMs}ms
  timeout check 150ms
  retries 3
  option redispatch 1
  retry-on all-retryable-errors

frontend bench
  bind 127.0.0.1:${input.port}
  default_backend api

backend api
  balance roundrobin
  option httpchk GET /ready
  default-server inter 200ms fall 2 rise 1 observe layer7 error-limit 3 on-error mark-down
${input.upstreamPorts.map((p, k) => `  server api-${k} 127.0.0.1:${p} check`).join("\n")}
`;
}
