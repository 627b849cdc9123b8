#!/usr/bin/env bash
# `make up` / `make down`: the Pulumi stack `dev` for SPEC on this machine.
#
# With the Pulumi CLI and a running Docker engine: stack `dev` on a file backend inside
# the repository (.pulumi/), then `pulumi up --yes` or `pulumi destroy --yes`. Without
# them: one line saying so, and `up` runs the embedded local runtime instead.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: scripts/stack.sh up|down [SPEC]}
spec=${2:-specs/single-node.yaml}

if ! command -v pulumi >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    missing=$(command -v pulumi >/dev/null 2>&1 && echo "no running Docker engine" || echo "no Pulumi CLI")
    if [ "$action" = up ]; then
        echo "make up: $missing here; running the local runtime for $spec on Kafka JVMs (Ctrl-C stops it)"
        exec .venv/bin/python -m infra up --local "$spec"
    fi
    echo "make down: $missing here, so Pulumi provisioned nothing; the local runtime stops with Ctrl-C"
    exit 0
fi

# A local file backend and a passphrase that protects nothing: for a laptop or CI box only.
# Set PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE for anything shared.
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$PWD/.pulumi}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-local-only-not-a-secret}
mkdir -p .pulumi
pulumi stack select --create dev
case $action in
    up)
        pulumi config set kafka-log-cluster:spec "$spec"
        # Which backend's stack the resources belong to: the sweeper takes only its own.
        backend=$(.venv/bin/python -c 'from infra.ops.stacks import backend_id, backend_url; print(backend_id(backend_url()))')
        pulumi config set kafka-log-cluster:backend "$backend"
        # A secured spec's CA, keys and passwords: the stack's one secret config value,
        # filled for this spec (what is there is kept), never a file or an argument in the
        # clear. Filled first, set after: a refused spec leaves the stack's keyring as it is.
        keyring=$({ pulumi config get kafka-log-cluster:keyring 2>/dev/null || true; } \
            | .venv/bin/python -m infra keyring "$spec")
        printf '%s' "$keyring" | pulumi config set --secret kafka-log-cluster:keyring
        pulumi up --yes
        ;;
    down) pulumi destroy --yes ;;
    *) echo "scripts/stack.sh: unknown action $action (up or down)" >&2; exit 2 ;;
esac
