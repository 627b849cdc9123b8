#!/bin/bash
# Stand-in for `kafka-storage.sh format --ignore-formatted --cluster-id ID --config CONFIG`:
# writes meta.properties into each log dir, as Kafka does, unless it is already there.
set -euo pipefail
[ "$1" = format ] || { echo "kafka-storage.sh stand-in: only 'format' is served" >&2; exit 2; }
shift
while [ $# -gt 0 ]; do
    case $1 in
        --cluster-id) cluster_id=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        *) shift ;;
    esac
done
node_id=$(sed -n 's/^node.id=//p' "$config")
IFS=, read -ra dirs <<< "$(sed -n 's/^log.dirs=//p' "$config")"
for dir in "${dirs[@]}"; do
    [ -f "$dir/meta.properties" ] && continue
    mkdir -p "$dir"
    printf 'version=1\ncluster.id=%s\nnode.id=%s\n' "$cluster_id" "$node_id" > "$dir/meta.properties"
done
