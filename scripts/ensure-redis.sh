#!/bin/sh
# Make sure a Redis answers on 127.0.0.1:6379 (tests and the demo use their own DB numbers).
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then exit 0; fi
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
for _ in 1 2 3 4 5 6 7 8 9 10; do
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "Redis did not start on 127.0.0.1:6379" >&2
exit 1
