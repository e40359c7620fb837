#!/usr/bin/env bash
# Packs the build with `cpack -G DEB`, checks the package's file list and metadata, then unpacks
# it into an empty root and runs the unpacked accel-launch --version, as on a clean machine.
#   check-deb.sh <accel build dir> <work dir> <expected version>
set -euo pipefail
build=$1 work=$2 version=$3
rm -rf "$work"
mkdir -p "$work/root"
(cd "$build" && cpack -G DEB -B "$work" >"$work/cpack.log")
deb=$(find "$work" -maxdepth 1 -name 'accel-launch_*.deb' | head -n1)
[ -n "$deb" ] || { echo "FAIL: cpack made no accel-launch_*.deb in $work (see $work/cpack.log)" >&2; exit 1; }
dpkg-deb --contents "$deb" | awk '{print $NF}' >"$work/files.txt"
status=0
for wanted in \
  ./usr/bin/accel-launch \
  ./usr/bin/accel-test-job \
  ./usr/include/accel/core/error.h \
  ./usr/include/accel/runtime/partial_state.h \
  ./usr/include/accel/pipeline/pipeline.h \
  ./usr/lib/libaccel_core.a \
  ./usr/lib/libaccel_runtime.a \
  ./usr/lib/cmake/accel/accelConfig.cmake \
  ./usr/lib/cmake/accel/accelTargets.cmake \
  ./usr/lib/pkgconfig/accel-core.pc \
  ./usr/lib/pkgconfig/accel-config.pc \
  ./usr/share/accel/gpt2/encoder.json; do
  grep -qxF "$wanted" "$work/files.txt" || { echo "FAIL: $deb lacks $wanted" >&2; status=1; }
done
# Nothing of the build or test tree may leak into the package.
if grep -E '_tests$|/tests/|CMakeFiles' "$work/files.txt"; then
  echo "FAIL: $deb ships test or build files (listed above)" >&2
  status=1
fi
depends=$(dpkg-deb --field "$deb" Depends)
grep -q 'libyaml-cpp-dev' <<<"$depends" || { echo "FAIL: Depends lacks libyaml-cpp-dev (the static libraries need it): '$depends'" >&2; status=1; }
dpkg-deb --extract "$deb" "$work/root"
reported=$("$work/root/usr/bin/accel-launch" --version)
grep -qF "$version" <<<"$reported" || { echo "FAIL: unpacked accel-launch --version said '$reported', expected $version" >&2; status=1; }
echo "$(basename "$deb"): $(wc -l <"$work/files.txt") entries; accel-launch --version: $reported"
exit $status
