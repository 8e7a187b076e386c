# Shell helpers shared by the conformance and e2e scripts: start an
# artifactstore on a free loopback port and stop it.

# start_server DATA_DIR [serve flags...]: sets ADDR and SERVER_PID.
start_server() {
  local dir=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ADDR=127.0.0.1:$port
  "${BIN:-bin/artifactstore}" serve --addr "$ADDR" --data "$dir" "$@" > "$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    # Any answer will do: with authentication on, /v2/ is a 401.
    if curl -s -o /dev/null "http://$ADDR/v2/" 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "server did not start:"; cat "$dir/server.log"; return 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
