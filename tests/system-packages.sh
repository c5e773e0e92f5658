#!/bin/sh
# The programs the tests run for real, from Debian's packages: the Redis and
# RabbitMQ brokers, ffprobe (to check exports), rclone (the reference copy
# that an archive root must compare clean against). Installs only what is
# missing, with apt-get (through sudo when not root); says what it installs.
set -eu
need=""
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v rabbitmq-server >/dev/null 2>&1 || need="$need rabbitmq-server"
command -v ffprobe >/dev/null 2>&1 || need="$need ffmpeg"
command -v rclone >/dev/null 2>&1 || need="$need rclone"
[ -z "$need" ] && exit 0
echo "tests/system-packages.sh: installing$need" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086 # one word per package
$sudo apt-get install -y -q --no-install-recommends $need
