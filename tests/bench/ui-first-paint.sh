#!/usr/bin/env bash
# ui-first-paint.sh [CHECKOUT] [RUNS]: first contentful paint of the web explorer (/ui/) on
# localhost, measured by headless Chromium through chromedriver (W3C WebDriver) from
# performance.getEntriesByType('paint'). Starts a fresh server (an empty log in a temporary data
# directory) on 127.0.0.1, then for each of RUNS (default 10) runs:
#   - cold: a new browser session (empty cache) loads /ui/ for the first time;
#   - warm: the same session loads /ui/ again (files revalidated with their ETags, 304s).
# Prints each run and the median and max of both, in milliseconds from navigation start.
#
# Needs /usr/bin/chromium and /usr/bin/chromedriver (scripts/test installs them) and python3.
# The server binary: $SEALTRAIL_BIN, else CHECKOUT/target/release/sealtrail, else
# CHECKOUT/target/debug/sealtrail (serving the page's few static files costs the same in both:
# what is measured is the browser's work). Build it first, e.g.
#   cargo build --release --locked -p sealtrail-server --bin sealtrail
# Bounded: every wait has a deadline; the server and chromedriver are stopped on exit.
set -euo pipefail
co=${1:-.} runs=${2:-10}
bin=${SEALTRAIL_BIN:-}
if [ -z "$bin" ]; then
  if [ -x "$co/target/release/sealtrail" ]; then bin="$co/target/release/sealtrail"; else bin="$co/target/debug/sealtrail"; fi
fi
[ -x "$bin" ] || { echo "no server binary at $bin: build it first (see the header)" >&2; exit 2; }
for f in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$f" ] || { echo "$f is missing: run scripts/test (it installs chromium and chromium-driver)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$bin" serve --data-dir "$tmp/data" --listen 127.0.0.1:0 --origin bench.sealtrail.example/log \
  --log warn > "$tmp/server.out" 2> "$tmp/server.err" &
url=""
for _ in $(seq 300); do
  url=$(sed -n 's/^sealtrail[a-z-]*: listening on \(http:[^ ]*\)$/\1/p' "$tmp/server.out" | head -1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the server did not start:" >&2; cat "$tmp/server.err" >&2; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/chromedriver --port="$port" > "$tmp/chromedriver.log" 2>&1 &

echo "server: $bin at $url; $(/usr/bin/chromium --version 2>/dev/null | head -1); $(nproc) cores"
python3 - "$port" "$url" "$runs" <<'PY'
import json, statistics, sys, time, urllib.request

port, url, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = f"http://127.0.0.1:{port}"

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["value"]

deadline = time.monotonic() + 20
while True:
    try:
        if call("GET", "/status").get("ready"):
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("chromedriver did not start")
    time.sleep(0.05)

CAPS = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "binary": "/usr/bin/chromium",
    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"]}}}}
FCP = ("const e = performance.getEntriesByType('paint')"
       ".find((p) => p.name === 'first-contentful-paint'); return e ? e.startTime : null;")

def first_paint(sid):
    call("POST", f"/session/{sid}/url", {"url": url + "/ui/"})
    title = call("POST", f"/session/{sid}/execute/sync", {"script": "return document.title", "args": []})
    if title != "sealtrail explorer":
        sys.exit(f"/ui/ is not the explorer (title {title!r}): is the binary older than the web explorer?")
    deadline = time.monotonic() + 20
    while True:
        t = call("POST", f"/session/{sid}/execute/sync", {"script": FCP, "args": []})
        if t is not None:
            return t
        if time.monotonic() > deadline:
            sys.exit("no first-contentful-paint entry")
        time.sleep(0.02)

cold, warm = [], []
for i in range(runs):
    sid = call("POST", "/session", CAPS)["sessionId"]
    try:
        cold.append(first_paint(sid))
        call("POST", f"/session/{sid}/url", {"url": "about:blank"})
        warm.append(first_paint(sid))
    finally:
        req = urllib.request.Request(f"{base}/session/{sid}", method="DELETE")
        urllib.request.urlopen(req, timeout=60).read()
    print(f"run {i + 1}: cold {cold[-1]:.0f} ms, warm {warm[-1]:.0f} ms", flush=True)

for name, xs in (("cold", cold), ("warm", warm)):
    print(f"first contentful paint, {name}: median {statistics.median(xs):.0f} ms, "
          f"max {max(xs):.0f} ms ({len(xs)} runs)")
PY
