#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, in a directory of its own (see TOOLCHAIN notes,
# "A throwaway PostgreSQL for tests").
#
#   scripts/pg.sh start DIR   make the cluster in DIR if needed, start it on a free port (the same
#                             port again on a restart) and print its URL
#   scripts/pg.sh start-tls DIR CERT KEY
#                             the same with TLS on (ssl=on), serving the PEM certificate chain
#                             CERT and its key KEY (copied into DIR; later starts keep TLS)
#   scripts/pg.sh stop DIR    stop it (fast: open connections are cut)
#   scripts/pg.sh url DIR     print its URL
#   scripts/pg.sh bindir      print where initdb and pg_ctl are; fails if PostgreSQL is missing
#
# PostgreSQL refuses to run as root, so as root it runs as the `postgres` user. fsync is off:
# this cluster is for tests only. Nothing is left behind once DIR is removed.
set -euo pipefail

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return 0
  fi
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Below Linux's ephemeral range (32768 and up): a port there can be bound as the local end of
# some outgoing connection, which a connect probe does not see, and the server's bind then fails.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    # A refused connection means nobody listens there.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

url() { echo "postgres://cardseal@127.0.0.1:$(cat "$1/port")/postgres"; }

init() {
  local dir=$1 bin=$2
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U cardseal >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
}

cmd=${1:-}
case "$cmd" in
  bindir) bindir ;;
  url) url "$2" ;;
  start-tls)
    dir=$2 cert=$3 key=$4
    bin=$(bindir) || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
    init "$dir" "$bin"
    # The server refuses a key that others can read: 0600, owned by the user it runs as.
    install -m 0644 "$cert" "$dir/server.crt"
    install -m 0600 "$key" "$dir/server.key"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/server.crt" "$dir/server.key"
    if ! grep -q '^ssl = on' "$dir/data/postgresql.conf"; then
      printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" \
        "$dir/server.crt" "$dir/server.key" >>"$dir/data/postgresql.conf"
    fi
    exec bash "$0" start "$dir"
    ;;
  start)
    dir=$2
    bin=$(bindir) || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
    init "$dir" "$bin"
    # A first start may lose its port to another process between the probe and the bind: it
    # tries another. A restart keeps its port (the URL the tests hold).
    tries=1
    [ -f "$dir/port" ] || { free_port >"$dir/port"; tries=5; }
    for try in $(seq 1 "$tries"); do
      port=$(cat "$dir/port")
      if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        >/dev/null 2>&1; then
        url "$dir"
        exit 0
      fi
      grep -q "Address already in use" "$dir/log" && [ "$try" -lt "$tries" ] || break
      free_port >"$dir/port"
    done
    tail -20 "$dir/log" >&2
    exit 1
    ;;
  stop)
    dir=$2
    bin=$(bindir)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
  *)
    echo "usage: $0 start DIR | start-tls DIR CERT KEY | stop DIR | url DIR | bindir" >&2
    exit 2
    ;;
esac
