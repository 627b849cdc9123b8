#!/bin/bash
# Stand-in for Kafka's kafka-server-start.sh CONFIG: every listener of CONFIG is served
# on its port by a Tansu proxy that advertises the listener's advertised address, all
# in front of one Tansu store shared by the environment (network alias tansu-store).
# Tansu has a single listener per process and no replication; proxies over one store
# give each node its own addresses while the nodes answer as one cluster.
set -euo pipefail
config=$1
store=${TANSU_STORE:-tcp://tansu-store:9092}
property() { sed -n "s/^$1=//p" "$config" | tail -n 1; }
advertised=$(property advertised.listeners)
pids=()
IFS=, read -ra listeners <<< "$(property listeners)"
for listener in "${listeners[@]}"; do
    name=${listener%%://*}
    port=${listener##*:}
    address=$(tr , '\n' <<< "$advertised" | sed -n "s|^$name://||p")
    tansu proxy --listener-url "tcp://0.0.0.0:$port" \
        --advertised-listener-url "tcp://${address:-$(hostname):$port}" --origin-url "$store" &
    pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 0' TERM INT
# A listener that dies takes the node down, as a broker's would.
wait -n
exit 1
