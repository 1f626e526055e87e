#!/usr/bin/env bash
# A real single-node Slurm cluster for the tests of the Slurm executor, from Debian's packages:
# munged, slurmctld, slurmd, and slurmdbd with MariaDB so that sacct works. Needs root; there
# is no init system here, so the script starts each daemon itself.
#
#   scripts/slurm-cluster.sh up        # write the configuration, start what is not running, wait
#                                      # until the node is idle (fast when it already is)
#   scripts/slurm-cluster.sh status    # say what runs; exit 0 only when all is ready
#   scripts/slurm-cluster.sh env       # KEY=value lines: the cluster, partition, node, test user
#   scripts/slurm-cluster.sh down      # stop the daemons this script started
#
# With CI=true, `up` installs slurm-wlm, slurmdbd, munge and mariadb-server when missing; by hand
# it says what is missing.
#
# The configuration goes where Slurm's commands look for it, /etc/slurm, marked as written here;
# a configuration this script did not write is never replaced. The node declares more CPUs than
# the machine has (SlurmdParameters=config_overrides keeps it in service) so that several small
# jobs run at once, schedules a job as soon as it is submitted (batch_sched_delay=0), gives a job
# without --mem DefMemPerCPU rather than the whole node, and keeps finished jobs in squeue for
# MinJobAge seconds. The normal account ATLAS_SLURM_USER [atlastest] submits jobs in tests of
# jobs that run as the submitting user.
set -euo pipefail
umask 022

cluster=atlas
partition=batch
conf=/etc/slurm
run=/run/atlas-slurm
logs=/var/log/atlas-test/slurm
test_user=${ATLAS_SLURM_USER:-atlastest}
marker="# Written by Atlas's scripts/slurm-cluster.sh: changes are overwritten."
node=$(hostname -s)

say() { echo "slurm-cluster: $*" >&2; }
die() {
  say "$*"
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1; }

# The node's memory as Slurm counts it (MiB), leaving some to the machine.
memory_mb() { awk '/^MemTotal:/ {printf "%d\n", $2 / 1024 * 0.85}' /proc/meminfo; }

# --- packages ---------------------------------------------------------------------------------

required=(
  "slurmctld slurm-wlm"
  "slurmd slurm-wlm"
  "sbatch slurm-wlm"
  "slurmdbd slurmdbd"
  "munged munge"
  "mariadbd mariadb-server"
  "mariadb mariadb-client"
  "openssl openssl"
)

missing_packages() {
  local pair cmd pkg out=()
  for pair in "${required[@]}"; do
    read -r cmd pkg <<<"$pair"
    need "$cmd" && continue
    [[ " ${out[*]} " == *" $pkg "* ]] || out+=("$pkg")
  done
  echo "${out[*]}"
}

# apt_install installs Debian packages without letting their scripts start services: this
# script starts the daemons, with its own configuration.
apt_install() {
  local made_policy= rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
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

pid_of() { # pid_of NAME: the pid of a daemon this script started, if it still runs
  local f=$run/$1.pid pid st
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] || return 1 # exited, not yet reaped
  # The pid file may be older than a reboot, its pid now another program's: the program run
  # must be this one ("slurmd" is a part of "slurmdbd").
  local exe
  exe=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1) || return 1
  [ "${exe##*/}" = "$1" ] || return 1
  echo "$pid"
}

# Refuses to start a second copy of a daemon someone else runs (exited ones linger as zombies
# until they are reaped: those do not count).
not_foreign() {
  local pid others=
  for pid in $(pgrep -x "$1" || true); do
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] || others+=" $pid"
  done
  [ -z "$others" ] || die "a $1 this script did not start is running (pid$others); stop it first"
}

# launch NAME CMD...: starts a daemon in the foreground of a session of its own, with no
# descriptor of this script's (so a pipe such as `make test | tee` is not held open).
launch() {
  local name=$1
  shift
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    # A daemon outlives the run that started it (a clean clone's `make test`, whose TMPDIR,
    # HOME and folder are removed with it): it gets the machine's own, and runs in /.
    cd /
    exec env TMPDIR=/tmp HOME=~root setsid "$@" </dev/null >>"$logs/$name.out" 2>&1
  ) &
  echo $! >"$run/$name.pid"
}

# stale NAME: whether the daemon runs with a temporary folder, or in a folder, that is gone (started by an older
# version of this script from a run that has ended): it can no longer write temporary files
# (MariaDB then fails sacct's queries).
stale() {
  local pid tmp
  pid=$(pid_of "$1") || return 1
  tmp=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^TMPDIR=//p')
  [ -n "$tmp" ] && [ ! -d "$tmp" ] && return 0
  # Or in a folder that is gone: the processes it starts (slurmstepd) cannot find theirs.
  case $(readlink "/proc/$pid/cwd" 2>/dev/null) in *" (deleted)") return 0 ;; esac
  return 1
}

stop_daemon() {
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$run/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 150); do
    pid_of "$name" >/dev/null || break
    [ "$i" = 150 ] && kill -KILL "$pid" 2>/dev/null || true
    sleep 0.1
  done
  rm -f "$run/$name.pid"
}

# wait_for NAME LOG SECONDS CMD...: runs CMD until it succeeds; on timeout shows the log.
wait_for() {
  local name=$1 log=$2 secs=$3 i
  shift 3
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    if [ -f "$run/$name.pid" ] && ! pid_of "$name" >/dev/null; then break; fi
    sleep 0.2
  done
  say "$name is not ready; the end of $log:"
  tail -n 25 "$log" >&2 || true
  exit 1
}

# --- configuration ----------------------------------------------------------------------------

changed=()

# install_conf FILE OWNER MODE: puts the new content (on stdin) in place if it differs, and
# notes the change so the daemons that read it restart.
install_conf() {
  local file=$1 owner=$2 mode=$3 tmp
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp"
  if [ -f "$file" ] && ! grep -qxF "$marker" "$file"; then
    rm -f "$tmp"
    die "$file was not written by this script; move it away to let it write its own"
  fi
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 0
  fi
  chown "$owner" "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$file"
  changed+=("$(basename "$file")")
}

db_password() {
  local pw
  pw=$(sed -n 's/^StoragePass=//p' "$conf/slurmdbd.conf" 2>/dev/null || true)
  [ -n "$pw" ] || pw=$(openssl rand -hex 16)
  echo "$pw"
}

write_configs() {
  mkdir -p "$conf" "$run" "$logs" /var/spool/slurmctld /var/spool/slurmd
  chown slurm:slurm /var/spool/slurmctld "$logs"
  install_conf "$conf/slurm.conf" root:root 644 <<EOF
$marker
ClusterName=$cluster
SlurmctldHost=$node(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$run/slurmctld.slurm-pid
SlurmdPidFile=$run/slurmd.slurm-pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/cgroup
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
KillWait=5
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
# More CPUs than the machine has, so that several jobs run at once; config_overrides keeps the
# node in service all the same.
SlurmdParameters=config_overrides
NodeName=$node NodeAddr=127.0.0.1 CPUs=32 RealMemory=$(memory_mb) State=UNKNOWN
DefMemPerCPU=100
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  install_conf "$conf/cgroup.conf" root:root 644 <<EOF
$marker
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainDevices=no
EOF
  install_conf "$conf/slurmdbd.conf" slurm:slurm 600 <<EOF
$marker
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=$logs/slurmdbd.log
PidFile=$run/slurmdbd.slurm-pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$(db_password)
StorageLoc=slurm_acct_db
EOF
}

conf_changed() { # conf_changed FILE...: whether any of the files changed in this run
  local f c
  for f in "$@"; do for c in "${changed[@]}"; do [ "$f" = "$c" ] && return 0; done; done
  return 1
}

# --- up, down, status -------------------------------------------------------------------------

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  not_foreign munged
  mkdir -p /run/munge
  chown munge:munge /run/munge
  launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
  wait_for munged "$logs/munged.out" 20 sh -c 'munge -n | unmunge'
}

start_mariadb() {
  mariadb-admin ping >/dev/null 2>&1 && return 0
  not_foreign mariadbd
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$logs/mariadb-install.out" 2>&1 ||
      { tail -n 20 "$logs/mariadb-install.out" >&2; die "initialising MariaDB failed"; }
  fi
  launch mariadbd /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1
  wait_for mariadbd "$logs/mariadbd.out" 60 mariadb-admin ping
}

setup_database() {
  local pw
  pw=$(sed -n 's/^StoragePass=//p' "$conf/slurmdbd.conf")
  mariadb <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pw';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

node_state() { sinfo -h -n "$node" -o %t 2>/dev/null; }

node_usable() { [[ $(node_state) =~ ^(idle|mix|alloc|comp)$ ]]; }

up() {
  [ "$(id -u)" = 0 ] || die "needs root (it starts munged, MariaDB and the Slurm daemons)"
  ensure_packages
  mkdir -p "$run" "$logs"
  exec 9>"$run.lock"
  flock 9
  local start=$SECONDS d
  for d in slurmd slurmctld slurmdbd mariadbd munged; do
    if stale "$d"; then
      say "$d runs in a folder, or with a temporary folder, that is gone: restarting it"
      stop_daemon "$d"
    fi
  done
  write_configs
  if ! id "$test_user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --user-group "$test_user"
    say "created the account $test_user"
  fi
  start_munge
  start_mariadb

  if conf_changed slurmdbd.conf; then stop_daemon slurmdbd; fi
  if ! pid_of slurmdbd >/dev/null; then
    not_foreign slurmdbd
    setup_database
    launch slurmdbd /usr/sbin/slurmdbd -D
  fi
  wait_for slurmdbd "$logs/slurmdbd.log" 60 sacctmgr -n -P list cluster
  # The test account gets an association of its own: without one, sacct names a job's user
  # "root" until the job's record settles.
  local assocs
  assocs=$(sacctmgr -n -P list associations format=cluster,account,user)
  grep -q "^$cluster|" <<<"$assocs" || sacctmgr -i add cluster "$cluster" >/dev/null
  grep -q "^$cluster|atlas|" <<<"$assocs" ||
    sacctmgr -i add account atlas cluster="$cluster" description=tests organization=atlas >/dev/null
  grep -q "^$cluster|atlas|$test_user\$" <<<"$assocs" ||
    sacctmgr -i add user "$test_user" account=atlas cluster="$cluster" >/dev/null

  if conf_changed slurm.conf cgroup.conf; then
    stop_daemon slurmd
    stop_daemon slurmctld
  fi
  if ! pid_of slurmctld >/dev/null; then
    not_foreign slurmctld
    launch slurmctld /usr/sbin/slurmctld -D
  fi
  wait_for slurmctld "$logs/slurmctld.log" 60 sh -c 'scontrol ping | grep -q UP'
  if ! pid_of slurmd >/dev/null; then
    not_foreign slurmd
    launch slurmd /usr/sbin/slurmd -D
  fi
  local i
  for i in $(seq 1 300); do
    node_usable && break
    if [ "$i" = 25 ] && [[ $(node_state) =~ ^(down|drain|drng|fail)\*?$ ]]; then
      scontrol update nodename="$node" state=resume 2>/dev/null || true
    fi
    if ! pid_of slurmd >/dev/null || [ "$i" = 300 ]; then
      say "node $node is not idle (state: $(node_state)); the end of $logs/slurmd.log:"
      tail -n 25 "$logs/slurmd.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  say "up in $((SECONDS - start)) s: cluster $cluster, partition $partition, node $node ($(node_state)); test account $test_user"
  say "logs in $logs"
}

down() {
  [ "$(id -u)" = 0 ] || die "needs root"
  mkdir -p "$run"
  exec 9>"$run.lock"
  flock 9
  if pid_of slurmctld >/dev/null; then
    local jobs
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$jobs" ] || scancel $jobs 2>/dev/null || true
  fi
  local d
  for d in slurmd slurmctld slurmdbd mariadbd munged; do stop_daemon "$d"; done
  say "stopped (the job state in /var/spool/slurmctld and the accounting database stay)"
}

status() {
  local ok=0 missing
  missing=$(missing_packages)
  if [ -n "$missing" ]; then
    say "missing Debian packages: $missing"
    say "not ready ($0 up starts it; CI=true installs the packages)"
    return 1
  fi
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then say "munged: running"; else
    say "munged: not running"
    ok=1
  fi
  if mariadb-admin ping >/dev/null 2>&1; then say "mariadb: running"; else
    say "mariadb: not running"
    ok=1
  fi
  if sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$cluster"; then
    say "slurmdbd: running, cluster $cluster registered"
  else
    say "slurmdbd: not running or cluster $cluster not registered"
    ok=1
  fi
  if scontrol ping 2>/dev/null | grep -q UP; then say "slurmctld: running"; else
    say "slurmctld: not running"
    ok=1
  fi
  if [ "$ok" = 0 ]; then
    if node_usable; then say "node $node: $(node_state)"; else
      say "node $node: $(node_state || true) (not usable)"
      ok=1
    fi
  fi
  if id "$test_user" >/dev/null 2>&1; then say "test account: $test_user"; else
    say "test account $test_user: missing"
    ok=1
  fi
  if [ "$ok" = 0 ]; then say "ready: partition $partition"; else say "not ready ($0 up starts it)"; fi
  return "$ok"
}

env_() {
  echo "ATLAS_SLURM_CLUSTER=$cluster"
  echo "ATLAS_SLURM_PARTITION=$partition"
  echo "ATLAS_SLURM_NODE=$node"
  echo "ATLAS_SLURM_MEMORY_MB=$(memory_mb)"
  echo "ATLAS_SLURM_USER=$test_user"
  echo "ATLAS_SLURM_LOGS=$logs"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_ ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

# On one line: bash has read all of it before it runs, should the file change meanwhile.
main "$@"; exit
