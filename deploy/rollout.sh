#!/usr/bin/env bash
# rollout.sh installs a Skiff cluster on a list of VMs over ssh, from this
# checkout (after `make build images`): the first control plane makes the
# CA, the other control planes get a copy of it, every worker gets its own
# kubelet certificate signed there, and each VM runs deploy/install.sh.
#
#   deploy/rollout.sh --control-plane cp1=10.0.0.11 --workers w1=10.0.0.21,w2=10.0.0.22
#   deploy/rollout.sh --control-plane cp1=10.0.0.11,cp2=10.0.0.12,cp3=10.0.0.13 \
#       --workers w1=10.0.0.21 --ha          # 3-member etcd on the control planes
#   deploy/rollout.sh ... --dry-run          # print every command, run none
#
# Each VM is reached as USER@IP (--user, default root) with key-based ssh.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly REMOTE_DIR=/opt/skiff-install
readonly PKI=/etc/skiff/pki

usage() {
	cat <<'EOF'
Usage: rollout.sh --control-plane NAME=IP[,NAME=IP...] [--workers NAME=IP[,...]] [options]

Options:
  --ha               run a 3-member (or N-member) etcd cluster on the control planes
                     instead of each apiserver's embedded etcd (needs 3 control planes)
  --user USER        ssh user (default root)
  --bin-dir DIR      built binaries (default: ../bin beside this script)
  --dry-run          print every command and run none
  -h, --help         this help
EOF
}

CONTROL_PLANES=""
WORKERS=""
HA=0
SSH_USER=root
BIN_DIR="${SCRIPT_DIR}/../bin"
DRY_RUN=0

die() {
	printf 'rollout.sh: %s\n' "$*" >&2
	exit 1
}

parse_args() {
	while [[ $# -gt 0 ]]; do
		case $1 in
		--control-plane | --workers | --user | --bin-dir)
			[[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
			case $1 in
			--control-plane) CONTROL_PLANES=$2 ;;
			--workers) WORKERS=$2 ;;
			--user) SSH_USER=$2 ;;
			--bin-dir) BIN_DIR=$2 ;;
			esac
			shift
			;;
		--ha) HA=1 ;;
		--dry-run) DRY_RUN=1 ;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
		shift
	done
	[[ -n $CONTROL_PLANES ]] || die "--control-plane is required"
	local hosts=()
	IFS=, read -r -a hosts <<<"${CONTROL_PLANES}${WORKERS:+,$WORKERS}"
	local h
	for h in "${hosts[@]}"; do
		[[ $h =~ ^[a-z0-9-]+=[0-9.]+$ ]] || die "host '$h' is not NAME=IPv4"
	done
	if [[ $HA == 1 ]]; then
		IFS=, read -r -a hosts <<<"$CONTROL_PLANES"
		[[ ${#hosts[@]} -ge 3 && $((${#hosts[@]} % 2)) == 1 ]] || die "--ha needs an odd number (3 or more) of control planes"
	fi
}

run() {
	printf '+ %s\n' "$*"
	if [[ $DRY_RUN == 0 ]]; then
		"$@"
	fi
}

name_of() { printf '%s' "${1%%=*}"; }
ip_of() { printf '%s' "${1#*=}"; }

remote() {
	local ip=$1
	shift
	run ssh -o BatchMode=yes "${SSH_USER}@${ip}" "$@"
}

# join SEP ITEMS... prints the items joined by SEP.
join() {
	local sep=$1 out=""
	shift
	local item
	for item in "$@"; do
		out+="${out:+$sep}${item}"
	done
	printf '%s' "$out"
}

# copy_pki FROM_IP TO_IP FILES... copies files of the PKI directory (paths
# relative to it, such as etcd/ca.crt) from one VM to REMOTE_DIR/pki on
# another, through this machine.
copy_pki() {
	local from=$1 to=$2
	shift 2
	local local_dir="${WORK}/pki-${to}"
	run mkdir -p -m 0700 "$local_dir"
	printf '+ ssh %s@%s tar -C %s -cf - %s | tar -C %s -xf -\n' "$SSH_USER" "$from" "$PKI" "$*" "$local_dir"
	if [[ $DRY_RUN == 0 ]]; then
		ssh -o BatchMode=yes "${SSH_USER}@${from}" tar -C "$PKI" -cf - "$@" | tar -C "$local_dir" -xf -
	fi
	remote "$to" mkdir -p -m 0700 "${REMOTE_DIR}/pki"
	run scp -rq -o BatchMode=yes "$local_dir"/* "${SSH_USER}@${to}:${REMOTE_DIR}/pki/"
}

main() {
	parse_args "$@"
	local cps=() workers=()
	IFS=, read -r -a cps <<<"$CONTROL_PLANES"
	[[ -z $WORKERS ]] || IFS=, read -r -a workers <<<"$WORKERS"

	local cp_ips=() apiservers=() etcd_members=() h
	for h in "${cps[@]}"; do
		cp_ips+=("$(ip_of "$h")")
		apiservers+=("$(ip_of "$h"):6443")
		etcd_members+=("$(name_of "$h")=http://$(ip_of "$h"):2380")
	done

	WORK=$(mktemp -d)
	trap 'rm -rf "$WORK"' EXIT
	local bundle="${WORK}/skiff.tar.gz"
	run tar -C "${SCRIPT_DIR}/.." -czf "$bundle" deploy/install.sh deploy/systemd -C "$BIN_DIR/.." "$(basename "$BIN_DIR")"
	for h in "${cps[@]}" "${workers[@]}"; do
		remote "$(ip_of "$h")" "rm -rf ${REMOTE_DIR} && mkdir -p ${REMOTE_DIR}"
		run scp -q -o BatchMode=yes "$bundle" "${SSH_USER}@$(ip_of "$h"):${REMOTE_DIR}/skiff.tar.gz"
		remote "$(ip_of "$h")" tar -C "$REMOTE_DIR" -xzf "${REMOTE_DIR}/skiff.tar.gz"
	done

	local common=(--apiservers "$(join , "${apiservers[@]}")" --apiserver-ips "$(join , "${cp_ips[@]}")")
	if [[ $HA == 1 ]]; then
		common+=(--etcd-initial-cluster "$(join , "${etcd_members[@]}")")
	fi
	local first_ip
	first_ip=$(ip_of "${cps[0]}")
	local i
	for i in "${!cps[@]}"; do
		h=${cps[$i]}
		local args=(control-plane --node-name "$(name_of "$h")" --node-ip "$(ip_of "$h")" --bin-dir "${REMOTE_DIR}/bin" "${common[@]}")
		if [[ $i -gt 0 ]]; then
			# The same CA and client identities on every control plane, and the
			# same etcd CA: each control plane signs its own etcd member and
			# apiserver-etcd-client certificates with it.
			copy_pki "$first_ip" "$(ip_of "$h")" ca.crt ca.key admin.crt admin.key \
				controller-manager.crt controller-manager.key scheduler.crt scheduler.key \
				proxy.crt proxy.key apiserver-kubelet-client.crt apiserver-kubelet-client.key \
				etcd/ca.crt etcd/ca.key
			args+=(--pki-from "${REMOTE_DIR}/pki")
		fi
		remote "$(ip_of "$h")" "${REMOTE_DIR}/deploy/install.sh" "${args[@]}"
	done
	for h in "${workers[@]}"; do
		local name ip
		name=$(name_of "$h")
		ip=$(ip_of "$h")
		remote "$first_ip" /usr/local/bin/skiff-pki node "$name" --ip "$ip" --dir "$PKI"
		copy_pki "$first_ip" "$ip" ca.crt "kubelet-${name}.crt" "kubelet-${name}.key" \
			"kubelet-${name}-serving.crt" "kubelet-${name}-serving.key" proxy.crt proxy.key
		remote "$ip" "${REMOTE_DIR}/deploy/install.sh" worker --node-name "$name" --node-ip "$ip" \
			--bin-dir "${REMOTE_DIR}/bin" --pki-from "${REMOTE_DIR}/pki" --apiservers "$(join , "${apiservers[@]}")"
	done
	echo "# done: on ${cps[0]%%=*}, run: skiff-ctl get nodes"
}

main "$@"
