#!/usr/bin/env bash
# A real SLURM on this machine: munged, slurmctld and two slurmd (nodes 127.0.0.1 and 127.0.0.2,
# so the two launchers of the job are distinct loopback machines) started from a scratch
# directory, then
#   1. sbatch configs/slurm/distributed_inference.sbatch: srun starts one accel-launch per node,
#      which read the layout from SLURM's variables and run distributed_inference as one job;
#   2. srun -n 4 accel-launch (a launcher per task) must be refused with the right srun line.
# Everything started is stopped at the end, whatever happens. About 20 s; ctest runs it when the
# daemons are installed (tests/launch/CMakeLists.txt). Installs Debian's slurm-wlm
# daemons and munge when missing (sudo unless root). Usage: scripts/test-slurm.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(cd "${1:-build}" && pwd)"
for binary in accel-launch distributed_inference; do
  [ -x "$build/bin/$binary" ] || { echo "test-slurm: $build/bin/$binary is missing; build first (scripts/build.sh)" >&2; exit 2; }
done

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
   ! command -v sbatch >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurmd slurmctld slurm-client munge
fi

work="$(mktemp -d /tmp/accel-slurm-XXXXXX)"
pids=()
stop_all() {
  # Steps finish by reporting to slurmd and slurmctld; stopping those first would leave their
  # slurmstepd behind.
  if [ -n "${SLURM_CONF:-}" ]; then
    local deadline=$((SECONDS + 20))
    while [ -n "$(squeue -h 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP_SLURM_DIR:-0}" = 1 ]; then echo "test-slurm: kept $work"; else rm -rf "$work"; fi
}
trap stop_all EXIT
fail() {
  echo "test-slurm: FAILED: $*" >&2
  for log in "$work"/*.log; do echo "--- $log" >&2; tail -n 20 "$log" >&2; done
  exit 1
}

# Ports: SLURM_TEST_PORT for slurmctld and the next two for the slurmd; by default three free
# ones, so that runs of the test suite on one machine do not share a cluster.
port_taken() { ss -Htln "( sport = :$1 )" 2>/dev/null | grep -q .; }
port="${SLURM_TEST_PORT:-}"
while [ -z "$port" ]; do
  candidate=$((21000 + RANDOM % 9000))
  port_taken $candidate || port_taken $((candidate + 1)) || port_taken $((candidate + 2)) || port=$candidate
done
user="$(id -un)"
mkdir -p "$work/state" "$work/spool" "$work/results"
chmod 700 "$work"
mungekey --create --keyfile="$work/munge.key" 2>/dev/null || dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$work/munge.key"
cat > "$work/slurm.conf" <<EOF
ClusterName=accel-test
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$work/munge.socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool/%n
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.%n.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.%n.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=10
NodeName=127.0.0.1 NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=$((port + 1)) CPUs=2 State=UNKNOWN
NodeName=127.0.0.2 NodeHostname=$(hostname -s) NodeAddr=127.0.0.2 Port=$((port + 2)) CPUs=2 State=UNKNOWN
PartitionName=test Nodes=127.0.0.[1-2] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
export SLURM_CONF="$work/slurm.conf"

munged --foreground --force --socket="$work/munge.socket" --key-file="$work/munge.key" \
  --pid-file="$work/munged.pid" --seed-file="$work/munged.seed" >"$work/munged.log" 2>&1 &
pids+=($!)
until [ -S "$work/munge.socket" ]; do sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" >"$work/slurmctld.out.log" 2>&1 &
pids+=($!)
for node in 127.0.0.1 127.0.0.2; do
  slurmd -D -N "$node" -f "$SLURM_CONF" >"$work/slurmd.$node.out.log" 2>&1 &
  pids+=($!)
done
deadline=$((SECONDS + 30))
until [ "$(sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l)" = 2 ]; do
  [ $SECONDS -lt $deadline ] || fail "the two nodes never became idle: $(sinfo -N 2>&1)"
  sleep 0.5
done
echo "test-slurm: slurmctld and two slurmd up: $(sinfo -h -N -o '%N %t' | tr '\n' ' ')"

# 1. The batch job: two launchers, one job.
started=$SECONDS
ACCEL_LAUNCH="$build/bin/accel-launch" JOB="$build/bin/distributed_inference" \
  sbatch --wait --output="$work/job.out" --chdir="$work" \
  configs/slurm/distributed_inference.sbatch -o "$work/results.jsonl" --max_new_tokens 4 >/dev/null ||
  fail "the batch job failed: $(cat "$work/job.out")"
grep -q "accel-launch: from SLURM job [0-9]*: --num_machines 2 (SLURM_STEP_NUM_NODES), --machine_rank [01] (SLURM_NODEID), --main_process_ip 127.0.0.1 (first of SLURM_STEP_NODELIST)" "$work/job.out" ||
  fail "no announcement of the SLURM layout in the job's output: $(cat "$work/job.out")"
grep -q "rank 3: " "$work/job.out" || fail "rank 3 reported no summary: $(cat "$work/job.out")"
[ "$(wc -l <"$work/results.jsonl")" = 8 ] || fail "the job wrote no complete output: $(cat "$work/job.out")"
echo "test-slurm: sbatch job with 2 nodes x 2 workers passed in $((SECONDS - started)) s"

# 2. A launcher per task is refused, naming the srun line that works.
if srun --nodes=1 --ntasks=2 --output="$work/per-task.out" "$build/bin/accel-launch" "$build/bin/distributed_inference" \
     >/dev/null 2>&1; then
  fail "srun -n 2 accel-launch was not refused"
fi
grep -q "it must run once per node and starts the workers itself: srun --nodes=1 --ntasks-per-node=1 accel-launch --num_processes 2" \
  "$work/per-task.out" || fail "srun -n 2 was refused without the right srun line: $(cat "$work/per-task.out")"
echo "test-slurm: srun -n 2 accel-launch refused with the srun line"
echo "test-slurm: passed"
