#!/bin/bash
# Instructions per request of one proxy process, counted by callgrind (deterministic up to the JIT's
# and the GC's timing, unlike req/s on a shared VM): a static nginx upstream, the proxy under
# `valgrind --tool=callgrind`, 5,000 requests of warm-up, counters zeroed, COUNT requests (default
# 20,000) over 8 keep-alive connections, counters dumped. Prints the dump's total ÷ COUNT.
#
#   bench/proxy/callgrind/count.sh OUT_DIR bare ROOT [EXTRA_TRAFFIC_YAML]   # bareProxy.ts, src of ROOT
#   bench/proxy/callgrind/count.sh OUT_DIR dataplane                        # src/dataplane/main.ts, fed by feedOnce.ts
#
# Under callgrind a request takes ~50× longer: a run of 20,000 takes 5-10 minutes. Functions:
# `callgrind_annotate OUT_DIR/callgrind.out.*.1`. Compiled code shows as bare addresses.
set -euo pipefail
out=$1 mode=$2 root=${3:-} extra=${4:-}
count=${COUNT:-20000}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
node=$repo/node_modules/.bin/node
rm -rf "$out" && mkdir -p "$out/nginx/tmp" "$out/state"
out=$(cd "$out" && pwd)
free_port() { "$node" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
upstream=$(free_port) port=$(free_port)
t=$out/nginx/tmp
cat > "$out/nginx/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $out/nginx/nginx.pid; error_log $out/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $t; proxy_temp_path $t; fastcgi_temp_path $t; uwsgi_temp_path $t; scgi_temp_path $t;
  server { listen 127.0.0.1:$upstream; keepalive_requests 1000000;
    location / { default_type application/json; return 200 '{"ok":true}\n'; } } }
CONF
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
nginx -p "$out/nginx" -c "$out/nginx/nginx.conf" & pids+=($!)
vg=(valgrind --tool=callgrind --smc-check=all-non-file "--callgrind-out-file=$out/callgrind.out.%p")
if [ "$mode" = bare ]; then
  "${vg[@]}" "$node" "$here/bareProxy.ts" --root "$root" --dir "$out" --port "$port" --upstream-port "$upstream" \
    ${extra:+--extra "$extra"} > "$out/proxy.out" 2> "$out/valgrind.log" & vpid=$!
  ready() { grep -q listening "$out/proxy.out"; }
else
  "${vg[@]}" "$node" "$repo/src/dataplane/main.ts" --state-dir "$out/state" > "$out/proxy.out" 2> "$out/valgrind.log" & vpid=$!
  "$node" "$here/feedOnce.ts" "$out" "$out/state" "$port" "$upstream" > "$out/feed.out" 2>&1 & pids+=($!)
  ready() { grep -q pushed "$out/feed.out" && curl -s -o /dev/null "http://127.0.0.1:$port/"; }
fi
pids+=("$vpid")
for _ in $(seq 1 900); do ready 2>/dev/null && break; sleep 1; done
"$node" "$here/fixedLoad.ts" "$port" 5000 8 > "$out/warmup.json"
callgrind_control -z "$vpid" > /dev/null
"$node" "$here/fixedLoad.ts" "$port" "$count" 8 > "$out/measured.json"
callgrind_control -d "$vpid" > /dev/null
kill "$vpid"; wait "$vpid" || true
total=$(grep -E '^(summary|totals):' "$out"/callgrind.out.*.1 | head -1 | awk '{print $2}')
echo "{\"mode\":\"$mode\",\"instructions\":$total,\"requests\":$count,\"perRequest\":$((total / count)),\"measured\":$(cat "$out/measured.json")}" | tee "$out/result.json"
