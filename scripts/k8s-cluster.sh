#!/usr/bin/env bash
# A real single-node Kubernetes cluster for the tests of the Kubernetes executor: kube-apiserver,
# kube-controller-manager, kube-scheduler and the kubelet, built from the Go module proxy at a
# pinned version, Debian's etcd, a containerd of its own with the CRI plugin (separate from
# Docker's), Debian's CNI plugins, and the worker image imported from Docker, with no registry.
# Needs root. Everything listens on 127.0.0.1 only.
#
#   scripts/k8s-cluster.sh build            # build the four binaries once into the cache
#   scripts/k8s-cluster.sh up               # build if needed, start what is not running, import
#                                           # images, wait until the node is Ready (fast when up)
#   scripts/k8s-cluster.sh import IMAGE...  # import Docker images into the cluster's containerd
#   scripts/k8s-cluster.sh status           # say what runs; exit 0 only when all is ready
#   scripts/k8s-cluster.sh env              # KEY=value lines: KUBECONFIG, the node, log dirs
#   scripts/k8s-cluster.sh down [--purge]   # stop it all (--purge: and remove its state)
#
# With CI=true, `up` installs the Debian packages it needs (etcd-server, containerd, runc,
# containernetworking-plugins) when missing; by hand it says what is missing.
#
# Environment (defaults in brackets):
#   ATLAS_K8S_VERSION  Kubernetes version [v1.31.13]
#   ATLAS_K8S_CACHE    the built binaries, outside any clone [/var/cache/atlas-test/k8s-VERSION]
#   ATLAS_K8S_STATE    configs, certificates, tokens, etcd data, containerd's and the kubelet's
#                      directories, the kubeconfig and the logs [/var/lib/atlas-test/k8s]
#   ATLAS_K8S_IMAGES   Docker images `up` imports [atlas-ce/worker:latest]
#
# The kubelet runs with --cloud-provider=external and no node IP: a loopback node IP is refused,
# and any other would make the API server reach the kubelet off loopback. The node's only address
# is then its host name, which must resolve to 127.0.0.0/8 (the machine's short host name when it
# does, else localhost), and the API server prefers that address, so `kubectl logs`, exec and
# port-forward work over loopback. Pods that should reach the host use hostNetwork: true; other
# pods get an address on a bridge with no gateway, which nothing here talks to.
set -euo pipefail
umask 022

version=${ATLAS_K8S_VERSION:-v1.31.13}
cache=${ATLAS_K8S_CACHE:-/var/cache/atlas-test/k8s-$version}
state=${ATLAS_K8S_STATE:-/var/lib/atlas-test/k8s}
images=${ATLAS_K8S_IMAGES:-atlas-ce/worker:latest}
run=/run/atlas-k8s
logs=$state/logs
sock=$run/containerd.sock
pause_image=docker.io/atlas-test/pause:1
etcd_port=12379
api_port=16443
api=https://127.0.0.1:$api_port
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
components=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)

say() { echo "k8s-cluster: $*" >&2; }
die() {
  say "$*"
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1; }

# The node's name: the short host name if it resolves to loopback only (the API server dials it),
# else localhost.
node_name() {
  local h addrs
  h=$(hostname -s 2>/dev/null || true)
  addrs=$(getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}' | sort -u)
  if [ -n "$h" ] && [ -n "$addrs" ] && ! grep -qv '^127\.' <<<"$addrs"; then
    echo "$h"
  else
    echo localhost
  fi
}

# --- build ------------------------------------------------------------------------------------

have_bins() {
  [ -f "$cache/.complete" ] || return 1
  local b
  for b in "${bins[@]}"; do [ -x "$cache/bin/$b" ] || return 1; done
}

# Builds the four binaries with a wrapper module: k8s.io/kubernetes's go.mod replaces its
# staging modules (k8s.io/api, client-go, ...) with directories that are not in its module zip,
# so `go install k8s.io/kubernetes/cmd/...@version` cannot work; the wrapper maps each to its
# published v0.MINOR.PATCH instead. The build cache lives beside the cache while building and
# goes when the build succeeds, so the build works with any HOME and GOCACHE and leaves ~300 MB.
build() {
  have_bins && return 0
  need go || die "go is not on PATH; it builds Kubernetes $version"
  local parent
  parent=$(dirname "$cache")
  mkdir -p "$parent"
  exec 8>"$cache.lock"
  flock 8
  if have_bins; then exec 8>&-; return 0; fi
  local start=$SECONDS work gocache log
  work=$(mktemp -d "$parent/.build-k8s-$version.XXXXXX")
  gocache=$parent/.gocache-k8s-$version
  log=$parent/build-k8s-$version.log
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  say "building Kubernetes $version (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet) into $cache; the first build takes several minutes"
  (
    cd "$work"
    export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod GOCACHE=$gocache CGO_ENABLED=0
    local dir minor
    dir=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] && [ -f "$dir/go.mod" ] || { echo "cannot download k8s.io/kubernetes@$version" >&2; exit 1; }
    minor=v0.${version#v1.}
    {
      printf 'module atlas.test/kubernetes\n\ngo 1.22.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$version"
      grep -oE '^[[:space:]]*k8s.io/[a-z0-9-]+ => ./staging/' "$dir/go.mod" | awk -v v="$minor" '{printf "\t%s => %s %s\n", $1, $1, v}'
      printf ')\n'
    } >go.mod
    local pkgs=() b
    for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    go get "${pkgs[@]/%/@$version}"
    local major=${version#v}
    major=${major%%.*}
    local minorv=${version#v*.}
    minorv=${minorv%%.*}
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=$major"
    ldflags+=" -X k8s.io/component-base/version.gitMinor=$minorv -X k8s.io/component-base/version.gitTreeState=clean"
    ldflags+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
    nice -n 10 go build -trimpath -ldflags "$ldflags" -o bin/ "${pkgs[@]}"
  ) >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    die "building Kubernetes $version failed (all of it in $log; the Go build cache stays in $gocache for the next try)"
  }
  rm -rf "$cache"
  mkdir -p "$cache"
  mv "$work/bin" "$cache/bin"
  build_pause "$cache"
  date -u +%FT%TZ >"$cache/.complete"
  rm -rf "$work" "$gocache" "$log"
  trap - EXIT
  exec 8>&-
  say "built Kubernetes $version in $((SECONDS - start)) s: $(du -sh "$cache" | cut -f1) in $cache"
}

# The pod sandbox's image: a static pause process (it sleeps, reaps children and exits on
# SIGINT or SIGTERM), packed as a `docker save` archive that ctr imports; no registry, no Docker.
build_pause() {
  local dest=$1/pause tmp
  need gcc || die "gcc is missing (apt-get install gcc libc6-dev): it builds the pod sandbox's pause binary"
  tmp=$(mktemp -d)
  mkdir -p "$dest" "$tmp/rootfs" "$tmp/image"
  cat >"$tmp/pause.c" <<'EOF'
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction s = {0}, r = {0};
  s.sa_handler = stop;
  r.sa_handler = reap;
  r.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGINT, &s, 0);
  sigaction(SIGTERM, &s, 0);
  sigaction(SIGCHLD, &r, 0);
  for (;;) pause();
}
EOF
  gcc -static -Os -s -o "$tmp/rootfs/pause" "$tmp/pause.c" || die "compiling the pause binary failed (is libc6-dev installed?)"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$tmp/rootfs" -cf "$tmp/image/layer.tar" pause
  local diff cfg
  diff=$(sha256sum "$tmp/image/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" >"$tmp/image/config.json"
  cfg=$(sha256sum "$tmp/image/config.json" | cut -d' ' -f1)
  mv "$tmp/image/config.json" "$tmp/image/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfg" "${pause_image#docker.io/}" >"$tmp/image/manifest.json"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$tmp/image" -cf "$dest/pause.tar" .
  rm -rf "$tmp"
}

# --- packages ---------------------------------------------------------------------------------

# Debian packages that provide what the cluster runs: "command package" pairs.
required=(
  "etcd etcd-server"
  "containerd containerd"
  "ctr containerd"
  "runc runc"
  "/usr/lib/cni/bridge containernetworking-plugins"
  "gcc gcc"
  "curl curl"
  "openssl openssl"
  "python3 python3"
)

missing_packages() {
  local pair cmd pkg out=()
  for pair in "${required[@]}"; do
    read -r cmd pkg <<<"$pair"
    if [[ $cmd == /* ]]; then [ -e "$cmd" ] && continue; else need "$cmd" && continue; fi
    [[ " ${out[*]} " == *" $pkg "* ]] || out+=("$pkg")
  done
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || ls /usr/lib/*/libc.a >/dev/null 2>&1 || out+=(libc6-dev)
  echo "${out[*]}"
}

# apt_install installs Debian packages without letting their scripts start services (there is
# no init system to own them; this script starts what it needs).
apt_install() {
  local made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  { apt-get update -qq && NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

ensure_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  if [ "${CI:-}" != true ]; then
    die "missing Debian packages: $missing (apt-get install $missing; CI=true installs them)"
  fi
  say "installing $missing"
  # shellcheck disable=SC2086
  apt_install $missing || die "installing $missing failed"
}

# --- processes --------------------------------------------------------------------------------

pid_of() {
  local f=$run/$1.pid pid st
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  # An exited daemon can linger as a zombie until it is reaped: not running.
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] || return 1
  # The pid file may be older than a reboot, its pid now another program's: the program run
  # must be this one (a substring would not do: "etcd" is in kube-apiserver's --etcd-servers).
  local exe
  exe=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1) || return 1
  [ "${exe##*/}" = "$1" ] || return 1
  echo "$pid"
}

# launch NAME CMD...: starts a daemon in a session of its own, with no descriptor of this
# script's (so a pipe such as `make test | tee` is not held open), logging to logs/NAME.log.
launch() {
  local name=$1
  shift
  [ ! -f "$logs/$name.log" ] || mv -f "$logs/$name.log" "$logs/$name.log.1"
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    # A daemon outlives the run that started it (a clean clone's `make test`, whose TMPDIR,
    # HOME and folder are removed with it): it gets the machine's own, and runs in /.
    cd /
    exec env TMPDIR=/tmp HOME=~root setsid "$@" </dev/null >"$logs/$name.log" 2>&1
  ) &
  echo $! >"$run/$name.pid"
}

# stale NAME: whether the component runs with a temporary folder, or in a folder, that is gone (started by an
# older version of this script from a run that has ended).
stale() {
  local pid tmp
  pid=$(pid_of "$1") || return 1
  tmp=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^TMPDIR=//p')
  [ -n "$tmp" ] && [ ! -d "$tmp" ] && return 0
  # Or in a folder that is gone: the processes it starts (slurmstepd) cannot find theirs.
  case $(readlink "/proc/$pid/cwd" 2>/dev/null) in *" (deleted)") return 0 ;; esac
  return 1
}

stop_component() {
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$run/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    pid_of "$name" >/dev/null || break
    [ "$i" = 100 ] && kill -KILL "$pid" 2>/dev/null || true
    sleep 0.1
  done
  rm -f "$run/$name.pid"
}

# wait_for WHAT SECONDS CMD...: runs CMD until it succeeds; on timeout shows the log of WHAT.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    if [ -f "$run/$what.pid" ] && ! pid_of "$what" >/dev/null; then break; fi
    sleep 0.2
  done
  say "$what is not ready; the end of $logs/$what.log:"
  tail -n 25 "$logs/$what.log" >&2 || true
  exit 1
}

# --- the API, with the admin token ------------------------------------------------------------

token_of() { awk -F, -v u="$1" '$2 == u {print $1}' "$state/pki/tokens.csv"; }

kapi() { # kapi METHOD PATH [curl args...]
  local method=$1 path=$2
  shift 2
  curl -sf --max-time 10 -A k8s-cluster.sh --cacert "$state/pki/ca.crt" -H "Authorization: Bearer $(token_of admin)" \
    -X "$method" "$@" "$api$path"
}

# The API server writes compact JSON (to clients other than curl) with the fields in a fixed
# order, so grep can read it.
node_ready() {
  local n
  n=$(kapi GET "/api/v1/nodes/$node") || return 1
  grep -q '"type":"Ready","status":"True"' <<<"$n" && ! grep -qE '"effect":"(NoSchedule|NoExecute)"' <<<"$n"
}

# Without a cloud controller nothing removes the taint an external cloud provider's kubelet
# registers with (once: the kubelet adds it only when it creates its Node).
untaint_node() {
  local n
  n=$(kapi GET "/api/v1/nodes/$node") || return 0
  grep -q '"key":"node.cloudprovider.kubernetes.io/uninitialized"' <<<"$n" || return 0
  python3 -c '
import json, sys
n = json.load(sys.stdin)
keep = [t for t in n["spec"].get("taints", []) if t["key"] != "node.cloudprovider.kubernetes.io/uninitialized"]
print(json.dumps({"metadata": {"resourceVersion": n["metadata"]["resourceVersion"]}, "spec": {"taints": keep}}))
' <<<"$n" >"$run/untaint.json"
  kapi PATCH "/api/v1/nodes/$node" -H 'Content-Type: application/merge-patch+json' --data-binary @"$run/untaint.json" >/dev/null || true
}

# --- configuration ----------------------------------------------------------------------------

kubeconfig() { # kubeconfig FILE USER
  local ca
  ca=$(base64 -w0 "$state/pki/ca.crt")
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: atlas-test
  cluster:
    server: $api
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $(token_of "$2")
contexts:
- name: atlas-test
  context:
    cluster: atlas-test
    user: $2
    namespace: default
current-context: atlas-test
EOF
  chmod 600 "$1"
}

# Certificates, keys and tokens are made once per state directory.
write_pki() {
  local pki=$state/pki
  mkdir -p "$pki"
  chmod 700 "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj /CN=atlas-test-ca -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    rm -f "$pki/apiserver.crt"
  fi
  if [ ! -f "$pki/apiserver.crt" ]; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kube-apiserver \
      -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1' \
      'extendedKeyUsage=serverAuth' 'keyUsage=critical,digitalSignature,keyEncipherment' >"$pki/apiserver.ext"
    openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
    rm -f "$pki/apiserver.csr" "$pki/apiserver.ext"
  fi
  if [ ! -f "$pki/sa.key" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key" 2>/dev/null
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  if [ ! -f "$pki/tokens.csv" ]; then
    # The components are cluster administrators too: the authorizer is RBAC only (no Node
    # authorizer), so a kubelet identity without system:masters could not manage its node.
    local u
    for u in admin kubelet kube-controller-manager kube-scheduler; do
      echo "$(openssl rand -hex 24),$u,$u,system:masters"
    done >"$pki/tokens.csv.new"
    mv "$pki/tokens.csv.new" "$pki/tokens.csv"
  fi
  chmod 600 "$pki"/*.key "$pki/tokens.csv"
  kubeconfig "$state/kubeconfig" admin
  local u
  for u in kubelet kube-controller-manager kube-scheduler; do kubeconfig "$state/conf/$u.kubeconfig" "$u"; done
}

write_configs() {
  mkdir -p "$state/conf" "$state/cni" "$state/etcd" "$state/containerd" "$state/kubelet" "$logs" "$run"
  chmod 700 "$state/etcd"
  write_pki
  cat >"$state/conf/containerd.toml" <<EOF
version = 2
root = "$state/containerd"
state = "$run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Required here: without CAP_SYS_RESOURCE, runc cannot give the sandbox the negative OOM
  # score the CRI asks for, and every pod sandbox fails to start.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni"
EOF
  # Pods without hostNetwork get an address on a bridge with no gateway and no masquerading: the
  # CRI needs a network to call the node ready, and nothing here sends traffic to a pod.
  cat >"$state/cni/10-atlas.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "atlas-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "atlas-k8s0",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "dataDir": "$state/cni-ipam"}
    },
    {"type": "loopback"}
  ]
}
EOF
  cat >"$state/conf/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$sock
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
# A test machine's disk and memory are shared: never evict or collect the imported images
# (pods use imagePullPolicy: Never, so a collected image cannot come back).
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
}

# A stamp of the version and of the code that configures and starts the components (without
# comments): a running cluster started from another recipe is restarted, its data kept, so that
# changed flags and configurations apply.
recipe() { { echo "$version"; declare -f write_configs write_pki kubeconfig start_all; } | sha256sum | cut -c1-16; }

# --- images -----------------------------------------------------------------------------------

ctr_() { ctr -a "$sock" -n k8s.io "$@"; }

ctr_has() { [ -n "$(ctr_ images ls -q "name==$1" 2>/dev/null)" ]; }

full_name() {
  local n=$1
  [[ $n == */* ]] || n=library/$n
  [[ ${n%%/*} == *.* || ${n%%/*} == *:* || ${n%%/*} == localhost ]] || n=docker.io/$n
  [[ ${n##*/} == *:* || $n == *@* ]] || n=$n:latest
  echo "$n"
}

stamp_file() { echo "$state/images/$(full_name "$1" | tr '/:@' '___').id"; }

# image_current IMAGE: the Docker image is in the cluster's containerd, as Docker has it now.
image_current() {
  local id
  id=$(docker image inspect --format '{{.Id}}' "$1" 2>/dev/null) || return 1
  [ "$(cat "$(stamp_file "$1")" 2>/dev/null)" = "$id" ] && ctr_has "$(full_name "$1")"
}

import_image() {
  local img=$1 id start=$SECONDS
  id=$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null) || {
    say "Docker has no image $img: not imported"
    return 1
  }
  image_current "$img" && return 0
  mkdir -p "$state/images"
  say "importing $img from Docker"
  docker save "$img" | ctr_ images import - >/dev/null || {
    say "importing $img failed"
    return 1
  }
  echo "$id" >"$(stamp_file "$img")"
  say "imported $img in $((SECONDS - start)) s"
}

import_images() {
  local img rc=0
  if ! docker info >/dev/null 2>&1; then
    say "no Docker engine: $images not imported"
    return 1
  fi
  for img in "$@"; do import_image "$img" || rc=1; done
  return "$rc"
}

# --- up, down, status -------------------------------------------------------------------------

start_all() {
  local b=$cache/bin
  if ! pid_of containerd >/dev/null; then
    launch containerd containerd --config "$state/conf/containerd.toml"
    wait_for containerd 30 ctr -a "$sock" version
  fi
  ctr_has "$pause_image" || ctr_ images import "$cache/pause/pause.tar" >/dev/null
  if ! pid_of etcd >/dev/null; then
    launch etcd etcd --name atlas-test --data-dir "$state/etcd" \
      --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
      --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
      --initial-cluster "atlas-test=http://127.0.0.1:$((etcd_port + 1))" --unsafe-no-fsync
    wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"
  fi
  if ! pid_of kube-apiserver >/dev/null; then
    launch kube-apiserver "$b/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
      --tls-cert-file "$state/pki/apiserver.crt" --tls-private-key-file "$state/pki/apiserver.key" \
      --token-auth-file "$state/pki/tokens.csv" --authorization-mode RBAC \
      --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$state/pki/sa.pub" \
      --service-account-signing-key-file "$state/pki/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
      --kubelet-preferred-address-types Hostname --endpoint-reconciler-type none --profiling=false
  fi
  wait_for kube-apiserver 90 kapi GET /readyz
  if ! pid_of kube-controller-manager >/dev/null; then
    # The node lifecycle controller must run: it lifts the not-ready taint.
    launch kube-controller-manager "$b/kube-controller-manager" --kubeconfig "$state/conf/kube-controller-manager.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --profiling=false \
      --service-account-private-key-file "$state/pki/sa.key" --root-ca-file "$state/pki/ca.crt" \
      --controllers '*,-node-ipam-controller,-service-lb-controller,-node-route-controller,-cloud-node-lifecycle-controller'
  fi
  if ! pid_of kube-scheduler >/dev/null; then
    launch kube-scheduler "$b/kube-scheduler" --kubeconfig "$state/conf/kube-scheduler.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --profiling=false
  fi
  if ! pid_of kubelet >/dev/null; then
    launch kubelet "$b/kubelet" --kubeconfig "$state/conf/kubelet.kubeconfig" --config "$state/conf/kubelet.yaml" \
      --root-dir "$state/kubelet" --hostname-override "$node" --cloud-provider external
  fi
  wait_for kube-controller-manager 60 curl -sfk https://127.0.0.1:10257/healthz
  wait_for kube-scheduler 60 curl -sfk https://127.0.0.1:10259/healthz
  wait_for kubelet 60 curl -sf http://127.0.0.1:10248/healthz
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root (it starts containerd and the kubelet)"
  ensure_packages
  build
  mkdir -p "$run" "$state"
  exec 9>"$run.lock"
  flock 9
  local start=$SECONDS
  node=$(node_name)
  if [ -f "$run/recipe" ] && [ "$(cat "$run/recipe")" != "$(recipe)" ]; then
    say "the recipe changed since the cluster started: restarting it (its data stays)"
    stop_all
  elif stale containerd || stale kubelet || stale kube-apiserver; then
    say "the cluster runs in a folder, or with a temporary folder, that is gone: restarting it (its data stays)"
    stop_all
  fi
  write_configs
  start_all
  recipe >"$run/recipe"
  local i
  for i in $(seq 1 300); do
    node_ready && break
    untaint_node
    [ "$i" = 300 ] && {
      say "node $node is not Ready after 60 s; the end of $logs/kubelet.log:"
      tail -n 25 "$logs/kubelet.log" >&2
      exit 1
    }
    sleep 0.2
  done
  # Pods are refused until the namespace's default service account exists.
  wait_for kube-controller-manager 60 kapi GET /api/v1/namespaces/default/serviceaccounts/default
  # shellcheck disable=SC2086
  import_images $images || true
  say "up in $((SECONDS - start)) s: node $node Ready, Kubernetes $version"
  say "use it with: export KUBECONFIG=$state/kubeconfig (kubectl, client-go); logs in $logs"
}

stop_all() {
  stop_component kubelet
  # The pods' containers outlive the kubelet and containerd: stop them first.
  if pid_of containerd >/dev/null; then
    local t
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1 || true; done
  fi
  local c
  for c in kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do stop_component "$c"; done
  rm -f "$run/recipe"
}

down() {
  [ "$(id -u)" = 0 ] || die "needs root"
  mkdir -p "$run"
  exec 9>"$run.lock"
  flock 9
  stop_all
  if [ "${1:-}" = --purge ]; then
    # The kubelet's volume mounts and containerd's sandbox mounts live inside these trees.
    findmnt -rn -o TARGET | grep -E "^($state|$run)/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf --one-file-system "$state" "$run"
    say "stopped; removed $state"
  else
    say "stopped (data kept in $state; --purge removes it)"
  fi
}

status() {
  local ok=0 c pid img
  node=$(node_name)
  if have_bins; then
    say "binaries: Kubernetes $version in $cache"
  else
    say "binaries: Kubernetes $version not built yet ($0 build)"
    ok=1
  fi
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] || { say "missing Debian packages: $missing"; ok=1; }
  for c in "${components[@]}"; do
    if pid=$(pid_of "$c"); then
      say "$c: running (pid $pid, log $logs/$c.log)"
    else
      say "$c: not running"
      ok=1
    fi
  done
  if [ "$ok" = 0 ]; then
    if node_ready; then say "node $node: Ready"; else
      say "node $node: not Ready"
      ok=1
    fi
    for img in $images; do
      if image_current "$img"; then say "image $img: imported"; else
        say "image $img: not imported or older than Docker's ($0 import $img)"
        ok=1
      fi
    done
  fi
  if [ "$ok" = 0 ]; then say "ready: KUBECONFIG=$state/kubeconfig"; else say "not ready ($0 up starts it)"; fi
  return "$ok"
}

env_() {
  echo "KUBECONFIG=$state/kubeconfig"
  echo "ATLAS_K8S_NODE=$(node_name)"
  echo "ATLAS_K8S_VERSION=$version"
  echo "ATLAS_K8S_LOGS=$logs"
  echo "ATLAS_K8S_POD_LOGS=/var/log/pods"
  echo "ATLAS_K8S_CONTAINERD=$sock"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    build) build ;;
    up) up ;;
    down) down "$@" ;;
    status) status ;;
    env) env_ ;;
    import)
      [ $# -gt 0 ] || die "usage: $0 import IMAGE..."
      pid_of containerd >/dev/null || die "the cluster's containerd is not running ($0 up)"
      import_images "$@"
      ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

# On one line: bash has read all of it before a long build starts, should the file change.
main "$@"; exit
