#!/usr/bin/env bash
# replicas.sh: run several CropShield replicas on this machine, sharing one PostgreSQL server
# started for the occasion, as a load-balanced deployment would (README "When one machine is not
# enough"). No Telegram token needed: every replica serves the web chat, its dashboard and its
# metrics on ports of its own. Ctrl-C stops the replicas, then PostgreSQL, and removes the
# temporary directory (KEEP=1 keeps it: PostgreSQL's data and every replica's log).
#
#   make build && scripts/replicas.sh            # 3 replicas
#   scripts/replicas.sh 2                        # 2 replicas
#   BASE_PORT=9100 scripts/replicas.sh           # PostgreSQL on 9100, replica i on 9100+10i...
#
# Replica i (1..N) listens on 127.0.0.1: web chat BASE_PORT+10i, dashboard +1, metrics +2, and
# with a Telegram token (CROPSHIELD_TELEGRAM_TOKEN) its webhook on +3, all replicas setting the
# webhook to TELEGRAM_WEBHOOK_URL (the public URL of your load balancer, required then).
# PostgreSQL (Debian's postgresql package: initdb, pg_ctl) listens on 127.0.0.1:BASE_PORT; as
# root it runs as the postgres user, as postgres refuses to run as root.
#
# Environment: CROPSHIELD_BIN (bin/cropshield), MODEL (models/cropshield-v2.onnx), BASE_PORT
# (8100), KEEP, and the CROPSHIELD_* settings of serve, which every replica takes.
set -euo pipefail

N=${1:-3}
BASE_PORT=${BASE_PORT:-8100}
BIN=${CROPSHIELD_BIN:-bin/cropshield}
MODEL=${MODEL:-models/cropshield-v2.onnx}
cd "$(dirname "$0")/.."

[[ "$N" =~ ^[1-9][0-9]?$ ]] || { echo "usage: $0 [REPLICAS (1-99)]" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed (to wait for each replica's /healthz)" >&2; exit 1; }
if [[ ! -x "$BIN" ]]; then
	echo "building $BIN"
	go build -o "$BIN" ./cmd/cropshield
fi
pgbin=""
if command -v initdb >/dev/null 2>&1; then
	pgbin=$(dirname "$(readlink -f "$(command -v initdb)")")
else
	pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [[ -z "$pgbin" || ! -x "$pgbin/initdb" || ! -x "$pgbin/pg_ctl" ]]; then
	echo "PostgreSQL's initdb and pg_ctl not found: apt-get install postgresql" >&2
	exit 1
fi
if [[ -n "${CROPSHIELD_TELEGRAM_TOKEN:-}" && -z "${TELEGRAM_WEBHOOK_URL:-}" ]]; then
	echo "with a Telegram token, set TELEGRAM_WEBHOOK_URL: the public HTTPS URL of the load balancer in front of the replicas' webhooks" >&2
	exit 2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/cropshield-replicas.XXXXXX")
as_pg=()
if [[ $(id -u) == 0 ]]; then
	# postgres refuses to run as root: its data belongs to the postgres user.
	mkdir -p "$dir/pg" && chown postgres: "$dir/pg" && chmod 755 "$dir"
	as_pg=(runuser -u postgres --)
else
	mkdir -p "$dir/pg"
fi
pgdata=$dir/pg/data
pids=()

stop_all() {
	trap - INT TERM EXIT
	echo
	echo "stopping the replicas"
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [[ -f "$pgdata/postmaster.pid" ]]; then
		echo "stopping PostgreSQL"
		"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null || true
	fi
	if [[ -n "${KEEP:-}" ]]; then
		echo "kept: $dir"
	else
		rm -rf "$dir"
	fi
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

echo "PostgreSQL ($pgbin) in $dir/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir/pg/initdb.log" 2>&1 ||
	{ cat "$dir/pg/initdb.log" >&2; exit 1; }
# In a session of its own: Ctrl-C reaches the replicas (stopped first, by the trap), not it.
"${as_pg[@]}" setsid "$pgbin/pg_ctl" -D "$pgdata" -l "$dir/pg/postgres.log" -w \
	-o "-c listen_addresses=127.0.0.1 -c port=$BASE_PORT -c unix_socket_directories= -c max_connections=100" start >/dev/null ||
	{ cat "$dir/pg/postgres.log" >&2; exit 1; }
"${as_pg[@]}" "$pgbin/createdb" -h 127.0.0.1 -p "$BASE_PORT" -U postgres cropshield
db="postgres://postgres@127.0.0.1:$BASE_PORT/cropshield?sslmode=disable"

for i in $(seq 1 "$N"); do
	p=$((BASE_PORT + 10 * i))
	args=(serve --db "$db" --replica "r$i" --model "$MODEL" --addr "127.0.0.1:$p" --review-addr "127.0.0.1:$((p + 1))"
		--metrics-addr "127.0.0.1:$((p + 2))")
	if [[ -n "${CROPSHIELD_TELEGRAM_TOKEN:-}" ]]; then
		args+=(--telegram-webhook-url "$TELEGRAM_WEBHOOK_URL" --telegram-webhook-addr "127.0.0.1:$((p + 3))")
	fi
	"$BIN" "${args[@]}" >"$dir/r$i.console" 2>"$dir/r$i.log" &
	pids+=($!)
done

for i in $(seq 1 "$N"); do
	p=$((BASE_PORT + 10 * i))
	for _ in $(seq 1 600); do
		curl -fs "http://127.0.0.1:$((p + 2))/healthz" >/dev/null 2>&1 && break
		if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
			echo "replica r$i stopped while starting:" >&2
			tail -n 20 "$dir/r$i.log" >&2
			exit 1
		fi
		sleep 0.1
	done
done

echo
echo "PostgreSQL: $db"
for i in $(seq 1 "$N"); do
	p=$((BASE_PORT + 10 * i))
	line="replica r$i: web chat http://127.0.0.1:$p/  dashboard http://127.0.0.1:$((p + 1))/  metrics http://127.0.0.1:$((p + 2))/metrics"
	[[ -n "${CROPSHIELD_TELEGRAM_TOKEN:-}" ]] && line+="  webhook 127.0.0.1:$((p + 3))"
	echo "$line"
done
link=$(grep -o 'http://[^ ]*/setup?token=[^ ]*' "$dir/r1.console" || true)
if [[ -n "$link" ]]; then
	echo
	echo "first dashboard admin (on r1; any replica then knows the account): $link"
	echo "  or: $BIN staff add NAME --role admin --db '$db'"
fi
echo
echo "logs: $dir/r*.log; Ctrl-C stops everything"
wait -n "${pids[@]}" || true
for i in $(seq 1 "$N"); do
	if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
		echo "replica r$i stopped by itself:" >&2
		tail -n 20 "$dir/r$i.log" >&2
	fi
done
exit 1
