#!/usr/bin/env bash
# Runs every benchmark against the real binaries in bin/ (make build first) and prints the
# figures. Each starts its own atlas-server with a temporary FOUNDATIONS_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
export ATLAS_SERVER_BIN=$PWD/bin/atlas-server
go build -o bin/ ./bench/atlasbench
echo "== 1. submit → running latency"
bin/atlasbench latency -n 200
if docker image inspect atlas-ce/worker:latest >/dev/null 2>&1; then
  echo "== 1b. Docker: submit → container running, next to docker run --rm; cached requirements"
  bin/atlasbench latency -n 50 -executor docker
  bin/atlasbench latency -n 50 -executor docker -requirements
else
  echo "== 1b. Docker benchmarks skipped: no Docker engine or worker image (make worker-image)"
fi
echo "== 2. drain 1,000 queued jobs"
bin/atlasbench drain -n 300 -w 2 -rounds 3 -depths 100,3000
echo "== 2b. the process executor's shim: CPU per job against fork/exec"
python3 bench/shim_cpu.py
echo "== 3. metric points/s from one Python process"
if [ -f bench/python_metrics.py ]; then python3 bench/python_metrics.py; else echo "(bench/python_metrics.py missing)"; fi
echo "== 4. listing a project of 10,000 jobs × 20 params × 20 metrics"
bin/atlasbench listing -jobs 10000
if scripts/k8s-cluster.sh status >/dev/null 2>&1 && command -v kubectl >/dev/null; then
  echo "== 4b. Kubernetes: submit → running/completed next to kubectl apply; a drain"
  (export $(scripts/k8s-cluster.sh env | grep ^KUBECONFIG=) && bin/atlasbench kubernetes)
else
  echo "== 4b. Kubernetes benchmark skipped: it needs the cluster (scripts/k8s-cluster.sh up) and kubectl"
fi
if scripts/slurm-cluster.sh status >/dev/null 2>&1; then
  echo "== 4c. Slurm: submit → running/completed next to a bare sbatch; a drain"
  bin/atlasbench slurm -run-as "$(scripts/slurm-cluster.sh env | sed -n 's/^ATLAS_SLURM_USER=//p')"
else
  echo "== 4c. Slurm benchmark skipped: it needs the cluster (scripts/slurm-cluster.sh up)"
fi
echo "== 5. a 200 MiB artifact through the server: local store, and S3 when MinIO is built"
scripts/s3-server.sh bin/atlasbench blobs -mb 200
echo "== 6. hyperparameter search: asha against random and grid on scikit-learn's digits (about 20 minutes)"
if /usr/bin/python3 -c "import sklearn" 2>/dev/null; then
  python3 bench/search_bench.py --seeds 1 --workers 2
else
  echo "(skipped: /usr/bin/python3 cannot import sklearn; apt-get install python3-sklearn)"
fi
