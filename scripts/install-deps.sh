#!/usr/bin/env bash
# Installs, from Debian's packages, what this machine lacks for one purpose, and nothing else:
#   install-deps.sh main   what README command 1 (scripts/demo.sh) needs: the compiler, CMake and
#                          the libraries accel-launch and the main job (distributed_inference) link
#   install-deps.sh all    (the default) also what the tests need: Catch2, the peers of the interop
#                          tests and benchmarks (Open MPI, python3-torch, SLURM and munge), clang for
#                          the fuzz targets, dpkg-dev for the package
# Idempotent: when everything is present it changes nothing.
set -euo pipefail

main_packages=(
  cmake g++ ninja-build ccache
  libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
  libtorch-dev libgloo-dev
  libopenblas0-openmp   # LibTorch's matmuls otherwise run on netlib's reference BLAS, ~17x slower
  libicu-dev                  # NFC for tokenizer.json normalizers (lib/models)
  zlib1g-dev                  # PNG files (lib/image writes them with zlib)
)
test_packages=(
  catch2
  libpng-dev                  # the image tests read PNG files back with libpng
  dpkg-dev file               # cpack -G DEB: dpkg-shlibdeps finds the package's dependencies
  openmpi-bin python3-torch   # peers for the benchmarks and interop tests (mpirun, torchrun)
  python3-numpy               # scripts/convert-to-gguf.py (checkpoints to GGUF for llama.cpp)
  python3-jinja2              # the reference the chat template interpreter is checked against
  slurmctld slurmd slurm-client munge   # a real SLURM for scripts/test-slurm.sh (a ctest entry)
  clang libclang-rt-dev       # libFuzzer and the sanitizer runtimes for scripts/fuzz.sh
)

case "${1:-all}" in
  main) packages=("${main_packages[@]}") ;;
  all) packages=("${main_packages[@]}" "${test_packages[@]}") ;;
  *) echo "install-deps: unknown set '$1'; expected main (README command 1) or all (also the tests)" >&2; exit 2 ;;
esac

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
