# Shell helpers shared by the conformance, e2e and bench-peers scripts:
# install the clients, start an artifactstore on a free loopback port and
# stop it.

# ORAS_VERSION is the oras every script uses, built from the Go module
# proxy into $TOOLS.
ORAS_VERSION=v1.3.6

# ensure_oras: installs oras $ORAS_VERSION into $TOOLS unless it is there;
# sets ORAS to its path.
ensure_oras() {
  mkdir -p "$TOOLS"
  if ! grep -qx "Version: *${ORAS_VERSION#v}" <<< "$("$TOOLS/oras" version 2>/dev/null || true)"; then
    echo "== installing oras $ORAS_VERSION into $TOOLS"
    GOBIN="$TOOLS" go install "oras.land/oras/cmd/oras@$ORAS_VERSION"
  fi
  ORAS=$TOOLS/oras
}

# apt_install PKG...: installs Debian packages quietly, refreshing the
# package lists once if the first attempt fails. Fails without root.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" < /dev/null > /dev/null ||
    { apt-get update -q < /dev/null > /dev/null && apt-get install -y -q "$@" < /dev/null > /dev/null; }
}

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
