#!/usr/bin/env bash
# Data-hash benchmark: how fast `reprise hash` (the code `reprise run --data` uses) hashes one
# 1 GiB file and a folder of 100,000 small files, next to coreutils' sha256sum on the same bytes.
#
#   bench/datahash.sh                # builds the release binary unless REPRISE_BIN is set
#
# Environment: REPRISE_BIN=path, SIZE_MIB=1024, FILES=100000, FILE_BYTES=1024, REPS=3,
# WORK=dir (default: a temp dir, removed at the end). Page cache: every measurement is taken warm
# (one untimed pass first), so the numbers are hashing speed, not disk speed; a cold-cache figure
# is printed too when /proc/sys/vm/drop_caches is writable.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SIZE_MIB=${SIZE_MIB:-1024}
FILES=${FILES:-100000}
FILE_BYTES=${FILE_BYTES:-1024}
REPS=${REPS:-3}
if [ -z "${REPRISE_BIN:-}" ]; then
  (cd "$ROOT" && swift build -c release --scratch-path .build-release --product reprise >&2)
  REPRISE_BIN="$ROOT/.build-release/release/reprise"
fi
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/reprise-datahash.XXXXXX")}
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git -C "$ROOT" rev-parse --short HEAD)"

echo "preparing ${SIZE_MIB} MiB file and ${FILES} files of ${FILE_BYTES} B in $WORK" >&2
head -c $((SIZE_MIB * 1048576)) /dev/urandom > "$WORK/big.bin"
python3 - "$WORK/many" "$FILES" "$FILE_BYTES" <<'PY'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, f"{i // 1000:03d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY

# Median wall time in seconds of REPS runs of "$@" (after one untimed warm-up).
median() {
  "$@" >/dev/null 2>&1
  local times=()
  for _ in $(seq "$REPS"); do
    local s e
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    times+=("$(python3 -c "print($e - $s)")")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

big_r=$(median "$REPRISE_BIN" hash "$WORK/big.bin")
big_s=$(median sha256sum "$WORK/big.bin")
many_r=$(median "$REPRISE_BIN" hash "$WORK/many")
many_s=$(median sh -c "cd '$WORK/many' && find . -type f -print0 | sort -z | xargs -0 sha256sum")
many_bytes=$((FILES * FILE_BYTES))

fmt() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
rate() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):,.0f}')" "$1" "$2"; }
echo
echo "| case | reprise hash | sha256sum | reprise throughput | sha256sum throughput | ratio (sha256sum time / reprise time) |"
echo "|---|---|---|---|---|---|"
echo "| 1 file, ${SIZE_MIB} MiB | $(fmt "$big_r") s | $(fmt "$big_s") s | $(rate "$SIZE_MIB" "$big_r") MiB/s | $(rate "$SIZE_MIB" "$big_s") MiB/s | $(python3 -c "print(f'{$big_s/$big_r:.2f}x')") |"
echo "| ${FILES} files × ${FILE_BYTES} B | $(fmt "$many_r") s | $(fmt "$many_s") s | $(rate "$FILES" "$many_r") files/s | $(rate "$FILES" "$many_s") files/s | $(python3 -c "print(f'{$many_s/$many_r:.2f}x')") |"
echo
"$REPRISE_BIN" hash "$WORK/many" 2>&1 | tail -2
if [ -w /proc/sys/vm/drop_caches ]; then
  sync; echo 3 > /proc/sys/vm/drop_caches
  s=$(date +%s.%N); "$REPRISE_BIN" hash "$WORK/big.bin" >/dev/null 2>&1; e=$(date +%s.%N)
  echo "cold cache, 1 file: $(fmt "$(python3 -c "print($e - $s)")") s"
fi
