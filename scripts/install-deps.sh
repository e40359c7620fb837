#!/usr/bin/env bash
# Installs, from Debian's packages, whatever the build, the tests and the peer benchmarks need
# and this machine lacks. Idempotent: when everything is present it changes nothing.
set -euo pipefail

packages=(
  cmake g++ ninja-build ccache
  dpkg-dev file               # cpack -G DEB: dpkg-shlibdeps finds the package's dependencies
  libcli11-dev libyaml-cpp-dev nlohmann-json3-dev catch2
  libtorch-dev libgloo-dev
  libopenblas0-openmp   # LibTorch's matmuls otherwise run on netlib's reference BLAS, ~17x slower
  libicu-dev                  # NFC for tokenizer.json normalizers (lib/models)
  zlib1g-dev libpng-dev       # PNG files (lib/image writes them with zlib; the tests read them back with libpng)
  openmpi-bin python3-torch   # peers for the benchmarks and interop tests (mpirun, torchrun)
  slurmctld slurmd slurm-client munge   # a real SLURM for scripts/test-slurm.sh (a ctest entry)
  clang libclang-rt-dev       # libFuzzer and the sanitizer runtimes for scripts/fuzz.sh
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
