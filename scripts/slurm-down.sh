#!/usr/bin/env bash
# slurm-down.sh: stop what scripts/slurm-up.sh started, by pid file. Idempotent.
# --purge also deletes job state, spool dirs, logs, generated configs and
# the accounting database.
set -uo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
# stop NAME:PIDFILE...: SIGTERM those running, wait (15 s, then SIGKILL)
stop() {
  local pids=() spec p
  for spec in "$@"; do
    p=$(cat "${spec#*:}" 2>/dev/null) || continue
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "${spec%%:*}" ] && kill -TERM "$p" && pids+=("$p")
    rm -f "${spec#*:}"
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p"
  done
  return 0
}
# never stop or purge a real cluster: only the one slurm-up.sh configured
if [ -f /etc/slurm/slurm.conf ] && ! grep -qx 'ClusterName=localci' /etc/slurm/slurm.conf; then
  echo "/etc/slurm/slurm.conf belongs to another cluster; slurm-down.sh leaves it alone" >&2; exit 1
fi
stop slurmd:/run/slurmd.pid slurmctld:/run/slurmctld.pid
stop slurmdbd:/run/slurmdbd.pid
if [ "${1:-}" = --purge ] && [ -S /run/mysqld/mysqld.sock ]; then
  mariadb -e 'DROP DATABASE IF EXISTS slurm_acct_db' 2>/dev/null
fi
stop mariadbd:/run/mysqld/mysqld.pid munged:/run/munge/munged.pid
if [ "${1:-}" = --purge ]; then
  rm -rf /var/spool/slurmctld /var/spool/slurmd /var/log/slurm/* \
         /etc/slurm/slurm.conf /etc/slurm/cgroup.conf /etc/slurm/slurmdbd.conf
fi
echo "slurm stopped"
