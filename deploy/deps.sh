#!/usr/bin/env bash
# Installs the Debian packages Skiff's tests and local cluster need, once.
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
	containerd runc iptables iproute2 containernetworking-plugins
	busybox-static nginx-light etcd-server etcd-client docker-registry
	protobuf-compiler libprotobuf-dev shellcheck systemd util-linux
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deploy/deps.sh: missing packages ${missing[*]}; run as root to install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged services are not used: Skiff starts its own containerd and
# etcd processes. Stop them if the package started them.
for svc in containerd etcd docker-registry; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done
