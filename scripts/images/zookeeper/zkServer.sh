#!/bin/bash
# The official image's zkServer.sh takes the heap from ZK_SERVER_HEAP (MB) through its
# zkEnv.sh; Debian's script does not read it, so it is passed here the same way.
export SERVER_JVMFLAGS="-Xmx${ZK_SERVER_HEAP:-1000}m ${SERVER_JVMFLAGS:-}"
exec /usr/share/zookeeper/bin/zkServer.sh "$@"
