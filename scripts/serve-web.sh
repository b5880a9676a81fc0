#!/usr/bin/env bash
# Builds the browser simulation (the wasm crate, release) into web/pkg/ and
# serves web/ on localhost until interrupted:
#
#   scripts/serve-web.sh            # http://127.0.0.1:8080/
#   scripts/serve-web.sh 9000       # or PORT=9000 scripts/serve-web.sh
#
# A busy port is followed by the next free one; the address is printed.
# Installs what the build needs (see scripts/setup.sh). Serves with Node's
# http module (scripts/e2e/serve.mjs, no packages), or python3 if there is no
# Node. HOST=0.0.0.0 makes the page reachable from other machines.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

port="${1:-${PORT:-8080}}"
host="${HOST:-127.0.0.1}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -gt 65535 ]; then
  echo "serve-web: not a port: $port (usage: scripts/serve-web.sh [PORT])" >&2
  exit 2
fi

if [ ! -f web/pkg/distribkv_wasm_bg.wasm ]; then
  echo "==> building the simulator for the browser (release; the first build takes a few minutes)"
else
  echo "==> building the simulator for the browser (release)"
fi
scripts/build-web.sh

if ! command -v node >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
  exec python3 - "$port" "$host" <<'PY'
import functools, http.server, socket, sys
port, host = int(sys.argv[1]), sys.argv[2]

def free(p):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, p))
            return True
        except OSError:
            return False

chosen = next((p for p in range(port, min(port + 20, 65536)) if port and free(p)), 0)
class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}
    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((host, chosen), functools.partial(Handler, directory="web"))
actual = server.server_address[1]
if port and actual != port:
    print(f"port {port} is busy; using {actual}")
shown = "localhost" if host in ("0.0.0.0", "::") else host
print("serving web/")
print(f"open http://{shown}:{actual}/   (Ctrl-C to stop)", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
PY
fi

ensure_node
HOST="$host" exec node scripts/e2e/serve.mjs "$port"
