#!/bin/sh
# Like the official image: every KAFKA_* variable but the JVM ones is a broker setting
# (KAFKA_LOG_DIRS -> log.dirs; `__` stands for `_` and `___` for `-`), KRaft storage is
# formatted on first start with CLUSTER_ID (the official image's default when unset).
set -eu
config=/opt/kafka/config/run/server.properties
: > "$config"
env | while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS) ;;
    KAFKA_*)
      key=$(printf '%s' "${name#KAFKA_}" | tr 'A-Z' 'a-z' \
        | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
      printf '%s=%s\n' "$key" "$value" >> "$config" ;;
  esac
done
grep -q '^log\.dirs=' "$config" || echo "log.dirs=/var/lib/kafka/data" >> "$config"
classpath='/opt/kafka/libs/*'
log4j=-Dlog4j.configuration=file:/opt/kafka/config/log4j.properties
java "$log4j" -cp "$classpath" kafka.tools.StorageTool format --ignore-formatted \
  -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$config"
# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several options
exec java ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} "$log4j" -cp "$classpath" kafka.Kafka "$config"
