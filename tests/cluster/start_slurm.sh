#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests marked `slurm` (tests/cluster/): Debian's
# slurm-wlm and munge, slurmctld and slurmd on `hostname -s` with its cores and memory, one
# partition `cpu`, no accounting, no cgroups. Run as root (.ci/run does, on a fresh machine):
#   bash tests/cluster/start_slurm.sh
# Idempotent: daemons already answering are left running. Logs: /var/log/slurm/.
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
fi

if scontrol ping 2>/dev/null | grep -q "is UP" && sinfo -h -o %t 2>/dev/null | grep -q idle; then
    echo "SLURM cluster already up: $(sinfo -h -o '%P %D %c %t')"
    exit 0
fi

# munge authenticates slurmctld, slurmd and the clients to each other: one key on the one node.
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --force
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
fi

host=$(hostname -s)
# The node's CPUs, sockets, cores and memory as slurmd detects them ("NodeName=... RealMemory=...").
node=$(slurmd -C | head -n 1)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=fcnlit
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# Processes tracked through their parent ids, no task binding: no cgroups needed (containers).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No accounting daemon: sacct has nothing to say (fcn_lit.slurm asks squeue instead).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# A requeued job starts again at once, and a killed one is gone 5 s after SIGTERM.
KillWait=5
MinJobAge=300
$node State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 100); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then
        echo "SLURM cluster up: $(sinfo -h -o '%P %D nodes, %c CPUs, %m MB, %t')"
        exit 0
    fi
    sleep 0.2
done
echo "SLURM did not come up; last lines of the logs:" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2
exit 1
