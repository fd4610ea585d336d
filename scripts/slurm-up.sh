#!/usr/bin/env bash
# slurm-up.sh: start a single-node Slurm cluster on this host without systemd
# and wait until its node takes jobs (idle, or busy with jobs already), for jobman's Slurm tests (tests/cli/slurm.rs)
# and for trying `jobman build --executor slurm` on one machine. Idempotent.
# Run as root (Debian 12); it apt-get installs slurm-wlm munge (+ slurmdbd
# mariadb-server with SLURM_LOCAL_SACCT=1) with --no-install-recommends if they
# are missing. Stop it with scripts/slurm-down.sh.
# Env: SLURM_LOCAL_CPUS    job slots on the node (default: 16, at least nproc;
#                          more slots than cores keep arrays of short jobs fast)
#      SLURM_LOCAL_SACCT=1 also run MariaDB + slurmdbd so that sacct works
#      SLURM_LOCAL_TIMEOUT seconds to wait for readiness (default 60)
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

NODE=$(hostname -s)
CPUS=${SLURM_LOCAL_CPUS:-$(( $(nproc) > 16 ? $(nproc) : 16 ))}
MEM_MB=$(awk '/MemTotal/ {print int($2/1024*0.8)}' /proc/meminfo)  # must not exceed real RAM
SACCT=${SLURM_LOCAL_SACCT:-0}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}

# install on first use (Debian 12: Slurm 22.05, no recommends: ~10 packages)
pkgs="slurm-wlm munge"; bins="slurmctld slurmd munged sbatch"
[ "$SACCT" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server" && bins="$bins slurmdbd mariadbd"
for b in $bins; do
  command -v "$b" >/dev/null || { apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >/dev/null
    break; }
done
deadline=$((SECONDS + TIMEOUT))

# alive PIDFILE NAME: the pid in PIDFILE is a running NAME (pid files can be stale)
alive() { local p; p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] &&
          [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]; }
stop()  { alive "$1" "$2" || return 0; local p; p=$(cat "$1"); kill "$p"
          for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; }
wait_for() {  # description, command...
  local what=$1; shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for $what" >&2
      tail -n 20 /var/log/slurm/*.log >&2 || true; exit 1; }
    sleep 0.1
  done
}

# never take over a real cluster's configuration
if [ -f /etc/slurm/slurm.conf ] && ! grep -qx 'ClusterName=localci' /etc/slurm/slurm.conf; then
  echo "/etc/slurm/slurm.conf belongs to another cluster; slurm-up.sh leaves it alone" >&2; exit 1
fi
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm

if [ "$SACCT" = 1 ]; then
  ACCOUNTING="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux"
else
  ACCOUNTING="# no slurmdbd: sacct does NOT work (\"Slurm accounting storage is disabled\")
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

conf=$(cat <<CONF
ClusterName=localci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups: see also cgroup.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# start batch jobs on the next 1 s scheduler tick instead of up to 3 s later
SchedulerParameters=batch_sched_delay=0
# accept CPUs= below even when it is more than the machine has (more job slots)
SlurmdParameters=config_overrides
# uncomment so jobs whose afterok dependency failed end CANCELLED instead of
# pending forever with Reason=DependencyNeverSatisfied (the Slurm default)
#DependencyParameters=kill_invalid_depend
MpiDefault=none
MailProg=/bin/true
${ACCOUNTING}
# every finished job is appended here (JobState, ExitCode, ...)
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
# finished jobs stay visible to scontrol/squeue for MinJobAge s (default 300)
MinJobAge=3600
# a requeued job (scontrol requeue, preemption) starts again after cred_expire s (default 120)
AuthInfo=cred_expire=10
ReturnToService=2
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
CONF
)
# slurmd always loads a cgroup plugin; naming v1 skips autodetection, which fails
# without a systemd hierarchy / on cgroup2 without systemd. With the plugins above
# it then never needs /sys/fs/cgroup.
cgconf="CgroupPlugin=cgroup/v1"
if [ "$conf" != "$(cat /etc/slurm/slurm.conf 2>/dev/null)" ] ||
   [ "$cgconf" != "$(cat /etc/slurm/cgroup.conf 2>/dev/null)" ]; then
  printf '%s\n' "$conf" > /etc/slurm/slurm.conf
  printf '%s\n' "$cgconf" > /etc/slurm/cgroup.conf
  stop /run/slurmd.pid slurmd; stop /run/slurmctld.pid slurmctld      # restart on config change
fi

# munge (the Debian package created /etc/munge/munge.key)
[ -s /etc/munge/munge.key ] || { mungekey --create --force
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
mkdir -p /run/munge && chown munge:munge /run/munge
alive /run/munge/munged.pid munged || runuser -u munge -- /usr/sbin/munged
wait_for munged sh -c 'munge -n </dev/null | unmunge'

if [ "$SACCT" = 1 ]; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  alive /run/mysqld/mysqld.pid mariadbd || (setsid /usr/sbin/mariadbd --user=mysql \
      </dev/null >>/var/log/slurm/mariadb.log 2>&1 &)
  wait_for mariadb mariadb-admin ping
  mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  cat > /etc/slurm/slurmdbd.conf <<DBD
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
DBD
  chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
  alive /run/slurmdbd.pid slurmdbd || /usr/sbin/slurmdbd
  wait_for slurmdbd sacctmgr -n list cluster
fi

# slurm daemons (they daemonize themselves and write the pid files above)
alive /run/slurmctld.pid slurmctld || /usr/sbin/slurmctld
alive /run/slurmd.pid slurmd || /usr/sbin/slurmd

# Ready: idle, or running jobs already (mix, alloc: a cluster started before, still busy).
until [[ "$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null)" =~ ^(idle|mix|alloc)$ ]]; do
  state=$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null || true)
  case "$state" in down*|drain*|drng*|inval*|fail*)
    scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true;; esac
  [ "$SECONDS" -lt "$deadline" ] || { echo "slurm not ready after ${TIMEOUT}s (node state '$state')" >&2
    tail -n 20 /var/log/slurm/*.log >&2 || true; exit 1; }
  sleep 0.2
done
if [ "$SACCT" = 1 ]; then wait_for "cluster registration" sh -c 'sacctmgr -n -P list cluster format=cluster | grep -qx localci'; fi
echo "slurm ready: node $NODE $(sinfo -h -N -n "$NODE" -o %t), $CPUS slots, sacct=$SACCT"
