#!/usr/bin/env bash
# install.sh turns a Debian or Ubuntu machine into a Skiff control-plane or
# worker node: packages, binaries, certificates, config files, systemd
# units; then it enables and starts the units.
#
#   deploy/install.sh control-plane [options]
#   deploy/install.sh worker --apiservers 10.0.0.11:6443 --pki-from DIR [options]
#   deploy/install.sh ROLE --dry-run ...   prints every action, changes nothing
#
# Run it from a checkout (or a copy of deploy/ and bin/) after `make build
# images`. docs/deploy.md walks through a cluster of three VMs.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

usage() {
	cat <<'EOF'
Usage: install.sh control-plane|worker [options]

Options:
  --dry-run                 print every action and change nothing
  --bin-dir DIR             where the built binaries are (default: ../bin beside this script)
  --image-dir DIR           docker-archive images for the kubelet to preload (default: BIN/images)
  --node-name NAME          this node's name (default: short hostname)
  --node-ip IP              this node's InternalIP (default: the source IP of the default route)
  --apiservers LIST         comma-separated host:port of every apiserver
                            (control-plane default: NODE_IP:6443; required for a worker)
  --apiserver-names LIST    extra DNS names for the apiserver certificate (control-plane)
  --apiserver-ips LIST      every control-plane IP for the apiserver certificate
                            (default: NODE_IP; give all of them for HA)
  --etcd-servers LIST       external etcd client URLs for the apiserver (default: embedded etcd,
                            or https://IP:2379 of every --etcd-initial-cluster member)
  --etcd-cafile FILE        with --etcd-servers: an operator's own TLS etcd, its CA, and the
  --etcd-certfile FILE      client certificate and key the apiserver presents to it (all
  --etcd-keyfile FILE       three, copied into PKI/etcd-client/)
  --etcd-initial-cluster L  install and configure a local etcd member of the cluster
                            NAME=http://IP:2380,... (HA; NAME must be this node's name);
                            peers and clients use TLS with the etcd CA (PKI/etcd), clients
                            must present a certificate it signed
  --pki-from DIR            certificates made on the first control plane: the CA and the
                            etcd CA in etcd/ (or, for a worker, ca.crt, kubelet-NAME.crt/.key,
                            kubelet-NAME-serving.crt/.key and proxy.crt/.key)
  --cluster-cidr CIDR       pod network (default 10.244.0.0/16)
  --service-cidr CIDR       Service network (default 10.96.0.0/12)
  --cluster-dns IP          DNS Service IP (default 10.96.0.10)
  --root DIR                install under DIR instead of / (packages and start are skipped)
  --skip-packages           do not run apt-get
  --no-start                enable the units but do not start them
  -h, --help                this help
EOF
}

ROLE=""
DRY_RUN=0
ROOT=""
BIN_DIR="${SCRIPT_DIR}/../bin"
IMAGE_DIR=""
NODE_NAME=""
NODE_IP=""
APISERVERS=""
APISERVER_NAMES=""
APISERVER_IPS=""
ETCD_SERVERS=""
ETCD_INITIAL_CLUSTER=""
ETCD_CAFILE=""
ETCD_CERTFILE=""
ETCD_KEYFILE=""
PKI_FROM=""
CLUSTER_CIDR="10.244.0.0/16"
SERVICE_CIDR="10.96.0.0/12"
CLUSTER_DNS="10.96.0.10"
SKIP_PACKAGES=0
NO_START=0

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

need_value() {
	[[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
}

parse_args() {
	[[ $# -ge 1 ]] || {
		usage >&2
		exit 2
	}
	case $1 in
	control-plane | worker) ROLE=$1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown role '$1': control-plane or worker" ;;
	esac
	shift
	while [[ $# -gt 0 ]]; do
		case $1 in
		--dry-run) DRY_RUN=1 ;;
		--skip-packages) SKIP_PACKAGES=1 ;;
		--no-start) NO_START=1 ;;
		--bin-dir | --image-dir | --node-name | --node-ip | --apiservers | --apiserver-names | --apiserver-ips | \
			--etcd-servers | --etcd-initial-cluster | --etcd-cafile | --etcd-certfile | --etcd-keyfile | \
			--pki-from | --cluster-cidr | --service-cidr | --cluster-dns | --root)
			need_value "$@"
			case $1 in
			--bin-dir) BIN_DIR=$2 ;;
			--image-dir) IMAGE_DIR=$2 ;;
			--node-name) NODE_NAME=$2 ;;
			--node-ip) NODE_IP=$2 ;;
			--apiservers) APISERVERS=$2 ;;
			--apiserver-names) APISERVER_NAMES=$2 ;;
			--apiserver-ips) APISERVER_IPS=$2 ;;
			--etcd-servers) ETCD_SERVERS=$2 ;;
			--etcd-initial-cluster) ETCD_INITIAL_CLUSTER=$2 ;;
			--etcd-cafile) ETCD_CAFILE=$2 ;;
			--etcd-certfile) ETCD_CERTFILE=$2 ;;
			--etcd-keyfile) ETCD_KEYFILE=$2 ;;
			--pki-from) PKI_FROM=$2 ;;
			--cluster-cidr) CLUSTER_CIDR=$2 ;;
			--service-cidr) SERVICE_CIDR=$2 ;;
			--cluster-dns) CLUSTER_DNS=$2 ;;
			--root) ROOT=${2%/} ;;
			esac
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
		shift
	done
	[[ -n $IMAGE_DIR ]] || IMAGE_DIR="${BIN_DIR}/images"
	[[ -n $NODE_NAME ]] || NODE_NAME=$(hostname -s)
	[[ -n $NODE_IP ]] || NODE_IP=$(default_ip)
	[[ -n $NODE_IP ]] || die "cannot find this node's IP: give --node-ip"
	[[ $NODE_NAME =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "node name '$NODE_NAME' is not a DNS-1123 label: give --node-name"
	if [[ $ROLE == control-plane ]]; then
		[[ -n $APISERVERS ]] || APISERVERS="${NODE_IP}:6443"
		[[ -n $APISERVER_IPS ]] || APISERVER_IPS=$NODE_IP
	else
		[[ -n $APISERVERS ]] || die "a worker needs --apiservers host:port[,host:port...]"
	fi
	if [[ -n $ETCD_INITIAL_CLUSTER ]]; then
		[[ $ROLE == control-plane ]] || die "--etcd-initial-cluster is for control-plane nodes"
		[[ ,$ETCD_INITIAL_CLUSTER, == *",${NODE_NAME}=http"* ]] || die "--etcd-initial-cluster has no member named '$NODE_NAME'"
		[[ -n $ETCD_SERVERS ]] || ETCD_SERVERS=$(etcd_client_urls "$ETCD_INITIAL_CLUSTER")
	fi
	check_external_etcd_tls
	if [[ -n $ROOT ]]; then
		SKIP_PACKAGES=1
		NO_START=1
	fi
}

# check_external_etcd_tls accepts the --etcd-cafile/certfile/keyfile of an
# operator's own etcd: all three or none, only with --etcd-servers and
# never with the etcd install.sh makes, and only files that exist.
check_external_etcd_tls() {
	local given=0 f
	for f in "$ETCD_CAFILE" "$ETCD_CERTFILE" "$ETCD_KEYFILE"; do
		[[ -z $f ]] || given=$((given + 1))
	done
	[[ $given == 0 ]] && return
	[[ $given == 3 ]] || die "--etcd-cafile, --etcd-certfile and --etcd-keyfile go together: give all three"
	[[ $ROLE == control-plane ]] || die "--etcd-cafile is for control-plane nodes"
	[[ -z $ETCD_INITIAL_CLUSTER ]] || die "--etcd-cafile is for an etcd of your own; --etcd-initial-cluster makes one with its own CA"
	[[ -n $ETCD_SERVERS ]] || die "--etcd-cafile needs --etcd-servers: the etcd it is for"
	for f in "$ETCD_CAFILE" "$ETCD_CERTFILE" "$ETCD_KEYFILE"; do
		[[ -f $f ]] || die "etcd TLS file ${f}: no such file"
	done
}

# default_ip is the source address of the default route.
default_ip() {
	ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") {print $(i + 1); exit}}'
}

# etcd_client_urls turns name=http://ip:2380,... into https://ip:2379,...:
# every member serves its clients over TLS.
etcd_client_urls() {
	local member urls=()
	IFS=, read -r -a members <<<"$1"
	for member in "${members[@]}"; do
		local url=${member#*=}
		url=${url#*://}
		urls+=("https://${url%:*}:2379")
	done
	(
		IFS=,
		printf '%s' "${urls[*]}"
	)
}

# run prints a command and, unless dry-running, runs it.
run() {
	printf '+ %s\n' "$*"
	if [[ $DRY_RUN == 0 ]]; then
		"$@"
	fi
}

# write_file PATH MODE < CONTENT installs a file under ROOT, printing it.
write_file() {
	local path="${ROOT}$1" mode=$2 content
	content=$(cat)
	printf '+ write %s (mode %s)\n' "$path" "$mode"
	printf '%s\n' "$content" | sed 's/^/    | /'
	if [[ $DRY_RUN == 0 ]]; then
		install -d -m 0755 "$(dirname "$path")"
		local tmp
		tmp=$(mktemp "${path}.XXXXXX")
		printf '%s\n' "$content" >"$tmp"
		chmod "$mode" "$tmp"
		mv -f "$tmp" "$path"
	fi
}

# yaml_list prints a comma-separated list as YAML flow items.
yaml_list() {
	local item out=() items
	IFS=, read -r -a items <<<"$1"
	for item in "${items[@]}"; do
		out+=("\"$item\"")
	done
	(
		IFS=,
		printf '[%s]' "${out[*]}"
	)
}

components() {
	if [[ $ROLE == control-plane ]]; then
		echo apiserver controller-manager scheduler
	else
		echo kubelet proxy
	fi
}

install_packages() {
	[[ $SKIP_PACKAGES == 0 ]] || {
		echo "# skipping packages"
		return
	}
	local pkgs=(ca-certificates iptables iproute2)
	if [[ $ROLE == worker ]]; then
		pkgs+=(containerd runc containernetworking-plugins util-linux)
	fi
	if [[ -n $ETCD_INITIAL_CLUSTER ]]; then
		pkgs+=(etcd-server etcd-client)
	fi
	run apt-get update
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
}

install_binaries() {
	local c comps
	read -r -a comps <<<"$(components)"
	# bin/ holds the components under their own names and skiff-pki.
	for c in ctl skiff-pki "${comps[@]}"; do
		local src="${BIN_DIR}/${c}"
		if [[ ! -x $src ]]; then
			[[ $DRY_RUN == 1 ]] || die "missing ${src}: run make build first"
			echo "# warning: ${src} is missing (make build)"
		fi
		run install -D -m 0755 "$src" "${ROOT}/usr/local/bin/skiff-${c#skiff-}"
	done
	if [[ $ROLE == worker && -d $IMAGE_DIR ]]; then
		run install -d -m 0755 "${ROOT}/var/lib/skiff/images"
		local img
		for img in "$IMAGE_DIR"/*.tar; do
			[[ -e $img ]] || continue
			run install -m 0644 "$img" "${ROOT}/var/lib/skiff/images/"
		done
	fi
}

readonly PKI=/etc/skiff/pki
# PKI/etcd holds the etcd CA and what it signs (skiff-pki init makes it);
# ETCD_PKI is what etcd itself reads.
readonly PKI_ETCD=${PKI}/etcd
readonly ETCD_PKI=/etc/etcd/pki
# PKI_ETCD_CLIENT holds the CA and client pair of an operator's own etcd.
readonly PKI_ETCD_CLIENT=${PKI}/etcd-client

install_pki() {
	run install -d -m 0700 "${ROOT}${PKI}"
	if [[ -n $PKI_FROM ]]; then
		[[ -d $PKI_FROM ]] || die "--pki-from ${PKI_FROM}: no such directory"
		local f
		for f in "$PKI_FROM"/*.crt "$PKI_FROM"/*.key "$PKI_FROM"/etcd/*.crt "$PKI_FROM"/etcd/*.key; do
			[[ -e $f ]] || continue
			local mode=0644 to="${ROOT}${PKI}/"
			[[ $f == *.key ]] && mode=0600
			if [[ $f == "$PKI_FROM"/etcd/* ]]; then
				to="${ROOT}${PKI_ETCD}/"
				run install -d -m 0700 "$to"
			fi
			run install -m "$mode" "$f" "$to"
		done
	fi
	if [[ -n $ETCD_CAFILE ]]; then
		run install -d -m 0700 "${ROOT}${PKI_ETCD_CLIENT}"
		run install -m 0644 "$ETCD_CAFILE" "${ROOT}${PKI_ETCD_CLIENT}/ca.crt"
		run install -m 0644 "$ETCD_CERTFILE" "${ROOT}${PKI_ETCD_CLIENT}/client.crt"
		run install -m 0600 "$ETCD_KEYFILE" "${ROOT}${PKI_ETCD_CLIENT}/client.key"
	fi
	local pki_cmd="${ROOT}/usr/local/bin/skiff-pki"
	if [[ $ROLE == control-plane ]]; then
		# Keeps an existing CA and etcd CA (copied with --pki-from on the
		# second and third control planes), so every apiserver trusts the
		# same clients and every etcd member the same peers and apiservers.
		run "$pki_cmd" init --dir "${ROOT}${PKI}" --apiserver-name "localhost,skiff-apiserver${APISERVER_NAMES:+,$APISERVER_NAMES}" \
			--apiserver-ip "127.0.0.1,${APISERVER_IPS}"
		if [[ -n $ETCD_INITIAL_CLUSTER ]]; then
			# Server and client auth: it serves etcd's client port and
			# authenticates this member to its peers both ways.
			run "$pki_cmd" serving "etcd-${NODE_NAME}" --dir "${ROOT}${PKI_ETCD}" --dns "$NODE_NAME,localhost" --ip "${NODE_IP},127.0.0.1"
		fi
	elif [[ -e ${ROOT}${PKI}/ca.key || ($DRY_RUN == 1 && -z $PKI_FROM) ]]; then
		run "$pki_cmd" node "$NODE_NAME" --dir "${ROOT}${PKI}" --ip "$NODE_IP"
	elif [[ $DRY_RUN == 0 && (! -e ${ROOT}${PKI}/kubelet-${NODE_NAME}.crt || ! -e ${ROOT}${PKI}/kubelet-${NODE_NAME}-serving.crt) ]]; then
		die "no kubelet-${NODE_NAME}.crt or kubelet-${NODE_NAME}-serving.crt in --pki-from: run 'skiff-pki node ${NODE_NAME} --ip ${NODE_IP}' on the first control plane and copy its ca.crt, kubelet-${NODE_NAME}.*, kubelet-${NODE_NAME}-serving.* and proxy.* here"
	fi
}

# client_config NAME FILE writes /etc/skiff/NAME.config for the identity
# whose certificate is PKI/FILE.crt.
client_config() {
	write_file "/etc/skiff/$1.config" 0600 <<EOF
currentContext: skiff
contexts:
- name: skiff
  servers: $(yaml_list "$APISERVERS")
  certificateAuthority: ${PKI}/ca.crt
  clientCertificate: ${PKI}/$2.crt
  clientKey: ${PKI}/$2.key
  namespace: default
EOF
}

install_configs() {
	if [[ $ROLE == control-plane ]]; then
		local etcd_config=""
		[[ -z $ETCD_SERVERS ]] || etcd_config="etcd-servers: $(yaml_list "$ETCD_SERVERS")"
		if [[ -n $ETCD_INITIAL_CLUSTER ]]; then
			# Our own etcd cluster: its CA, and the apiserver's certificate
			# from it, the only client identity the members accept.
			etcd_config+="
etcd-cafile: ${PKI_ETCD}/ca.crt
etcd-certfile: ${PKI_ETCD}/apiserver-etcd-client.crt
etcd-keyfile: ${PKI_ETCD}/apiserver-etcd-client.key"
		elif [[ -n $ETCD_CAFILE ]]; then
			etcd_config+="
etcd-cafile: ${PKI_ETCD_CLIENT}/ca.crt
etcd-certfile: ${PKI_ETCD_CLIENT}/client.crt
etcd-keyfile: ${PKI_ETCD_CLIENT}/client.key"
		fi
		write_file /etc/skiff/apiserver.yaml 0644 <<EOF
listen: "0.0.0.0:6443"
http-addr: "127.0.0.1:6080"
data-dir: /var/lib/skiff/etcd
service-cluster-ip-range: "${SERVICE_CIDR}"
tls-cert-file: ${PKI}/apiserver.crt
tls-private-key-file: ${PKI}/apiserver.key
client-ca-file: ${PKI}/ca.crt
audit-log-path: /var/log/skiff/audit.log
${etcd_config}
kubelet-client-certificate: ${PKI}/apiserver-kubelet-client.crt
kubelet-client-key: ${PKI}/apiserver-kubelet-client.key
EOF
		client_config controller-manager controller-manager
		write_file /etc/skiff/controller-manager.yaml 0644 <<EOF
client-config: /etc/skiff/controller-manager.config
cluster-cidr: "${CLUSTER_CIDR}"
http-addr: "127.0.0.1:10257"
EOF
		client_config scheduler scheduler
		write_file /etc/skiff/scheduler.yaml 0644 <<EOF
client-config: /etc/skiff/scheduler.config
http-addr: "127.0.0.1:10259"
EOF
		client_config admin admin
		run install -d -m 0700 "${ROOT}/root/.skiff"
		run install -m 0600 "${ROOT}/etc/skiff/admin.config" "${ROOT}/root/.skiff/config"
		if [[ -n $ETCD_INITIAL_CLUSTER ]]; then
			install_etcd
		fi
	else
		client_config kubelet "kubelet-${NODE_NAME}"
		write_file /etc/skiff/kubelet.yaml 0644 <<EOF
client-config: /etc/skiff/kubelet.config
node-name: ${NODE_NAME}
node-ip: "${NODE_IP}"
containerd-address: /run/containerd/containerd.sock
root-dir: /var/lib/skiff/kubelet
cni-bin-dir: /usr/lib/cni
cni-conf-dir: /etc/cni/net.d
bridge: skiff0
cluster-dns: "${CLUSTER_DNS}"
image-preload-dir: /var/lib/skiff/images
http-addr: "127.0.0.1:10248"
tls-cert-file: ${PKI}/kubelet-${NODE_NAME}-serving.crt
tls-private-key-file: ${PKI}/kubelet-${NODE_NAME}-serving.key
client-ca-file: ${PKI}/ca.crt
authorized-client-names: ["system:apiserver"]
EOF
		client_config proxy proxy
		write_file /etc/skiff/proxy.yaml 0644 <<EOF
client-config: /etc/skiff/proxy.config
node-name: ${NODE_NAME}
cluster-cidr: "${CLUSTER_CIDR}"
service-cidr: "${SERVICE_CIDR}"
cluster-dns: "${CLUSTER_DNS}"
http-addr: "127.0.0.1:10256"
EOF
	fi
}

# install_etcd configures Debian's etcd-server as one member of the
# control planes' etcd cluster, as kubeadm does: clients and peers over TLS,
# both with client certificate auth against the etcd CA, which signs
# nothing but the members and the apiservers. etcd has no authorization of
# its own here: whoever it lets in reads and writes every object.
install_etcd() {
	local listen_client="https://${NODE_IP}:2379"
	# For etcdctl on the node itself.
	[[ $NODE_IP == 127.0.0.1 ]] || listen_client+=",https://127.0.0.1:2379"
	write_file /etc/default/etcd 0644 <<EOF
ETCD_NAME="${NODE_NAME}"
ETCD_DATA_DIR="/var/lib/etcd/skiff"
ETCD_LISTEN_PEER_URLS="https://${NODE_IP}:2380"
ETCD_INITIAL_ADVERTISE_PEER_URLS="https://${NODE_IP}:2380"
ETCD_LISTEN_CLIENT_URLS="${listen_client}"
ETCD_ADVERTISE_CLIENT_URLS="https://${NODE_IP}:2379"
ETCD_INITIAL_CLUSTER="${ETCD_INITIAL_CLUSTER//http:/https:}"
ETCD_INITIAL_CLUSTER_STATE="new"
ETCD_INITIAL_CLUSTER_TOKEN="skiff"
ETCD_CERT_FILE="${ETCD_PKI}/member.crt"
ETCD_KEY_FILE="${ETCD_PKI}/member.key"
ETCD_TRUSTED_CA_FILE="${ETCD_PKI}/ca.crt"
ETCD_CLIENT_CERT_AUTH="true"
ETCD_PEER_CERT_FILE="${ETCD_PKI}/member.crt"
ETCD_PEER_KEY_FILE="${ETCD_PKI}/member.key"
ETCD_PEER_TRUSTED_CA_FILE="${ETCD_PKI}/ca.crt"
ETCD_PEER_CLIENT_CERT_AUTH="true"
EOF
	# etcd runs as its own user and cannot read /etc/skiff/pki.
	local owner=()
	[[ -n $ROOT ]] || owner=(-o etcd -g etcd)
	run install -d "${owner[@]}" -m 0700 "${ROOT}${ETCD_PKI}"
	run install "${owner[@]}" -m 0644 "${ROOT}${PKI_ETCD}/ca.crt" "${ROOT}${ETCD_PKI}/ca.crt"
	run install "${owner[@]}" -m 0644 "${ROOT}${PKI_ETCD}/etcd-${NODE_NAME}.crt" "${ROOT}${ETCD_PKI}/member.crt"
	run install "${owner[@]}" -m 0600 "${ROOT}${PKI_ETCD}/etcd-${NODE_NAME}.key" "${ROOT}${ETCD_PKI}/member.key"
}

install_units() {
	local c
	for c in $(components); do
		run install -D -m 0644 "${SCRIPT_DIR}/systemd/skiff-${c}.service" "${ROOT}/etc/systemd/system/skiff-${c}.service"
	done
	local systemctl=(systemctl)
	[[ -z $ROOT ]] || systemctl+=("--root=${ROOT}")
	if [[ -z $ROOT ]]; then
		run systemctl daemon-reload
	fi
	if [[ -n $ETCD_INITIAL_CLUSTER && (-z $ROOT || -e ${ROOT}/usr/lib/systemd/system/etcd.service || -e ${ROOT}/lib/systemd/system/etcd.service) ]]; then
		run "${systemctl[@]}" enable etcd.service
		# --no-block: a member waits for a quorum, which the other control
		# planes only bring once their own install runs.
		[[ $NO_START == 1 ]] || run systemctl restart --no-block etcd.service
	fi
	# Under --root no package is installed: containerd is there only if the
	# root already has it.
	if [[ $ROLE == worker && (-z $ROOT || -e ${ROOT}/usr/lib/systemd/system/containerd.service || -e ${ROOT}/lib/systemd/system/containerd.service) ]]; then
		run "${systemctl[@]}" enable containerd.service
		[[ $NO_START == 1 ]] || run systemctl start containerd.service
	fi
	for c in $(components); do
		run "${systemctl[@]}" enable "skiff-${c}.service"
		[[ $NO_START == 1 ]] || run systemctl restart "skiff-${c}.service"
	done
}

main() {
	parse_args "$@"
	if [[ $DRY_RUN == 0 && -z $ROOT && $(id -u) != 0 ]]; then
		die "run as root (or try --dry-run)"
	fi
	local mode=""
	[[ $DRY_RUN == 0 ]] || mode=", dry run: nothing is changed"
	echo "# skiff ${ROLE} ${NODE_NAME} (${NODE_IP}), apiservers ${APISERVERS}${ROOT:+, under ${ROOT}}${mode}"
	install_packages
	install_binaries
	install_pki
	install_configs
	install_units
	echo "# done: ${ROLE} ${NODE_NAME}"
}

main "$@"
