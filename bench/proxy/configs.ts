/**
 * The configurations of nginx (the reference proxy and the static upstream), one worker each, on
 * loopback (plain HAProxy's: haproxyPlain.ts). Written to the run's
 * temp dir; the report prints them as they were used.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The directories nginx writes to, all inside `prefix`. */
function nginxPreamble(prefix: string): string {
  return `worker_processes 1;
daemon off;
master_process off;
pid ${join(prefix, "nginx.pid")};
error_log ${join(prefix, "error.log")} warn;

events {
  worker_connections 4096;
}
`;
}

function nginxTempPaths(prefix: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `  ${kind}_temp_path ${join(prefix, "tmp", kind)};`)
    .join("\n");
}

/**
 * nginx as a reverse proxy: one worker, an upstream keep-alive pool of 64 connections. nginx
 * closes a keep-alive connection after 1000 requests by default (client and upstream side); the
 * other contenders never do, so that limit is lifted to measure proxying, not reconnects.
 */
export function nginxProxyConfig(options: { prefix: string; port: number; upstreamPort: number }): string {
  return `${nginxPreamble(options.prefix)}
http {
  access_log off;
${nginxTempPaths(options.prefix)}

  upstream app {
    server 127.0.0.1:${options.upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }

  server {
    listen 127.0.0.1:${options.port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** nginx as the tiny fixed-response upstream: one worker, 200 with a 12-byte JSON body. */
export function nginxStaticConfig(options: { prefix: string; port: number }): string {
  return `${nginxPreamble(options.prefix)}
http {
  access_log off;
${nginxTempPaths(options.prefix)}

  server {
    listen 127.0.0.1:${options.port};
    keepalive_requests 1000000;
    location / {
      default_type application/json;
      return 200 '{"ok":true}\\n';
    }
  }
}
`;
}

/** Write `text` as `name` in a fresh `dir` (with nginx's temp dirs); returns the file's path. */
export function writeConfig(dir: string, name: string, text: string): string {
  mkdirSync(join(dir, "tmp"), { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
