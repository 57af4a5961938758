#!/usr/bin/env bash
# Model-checks the exactly-once handoff (model/handoff.pml) with spin: every property of the correct model must
# hold (safety exhaustively, termination under weak fairness), and every mutant (a known bug) must yield a
# counterexample. Prints a table, writes each counterexample as a readable sequence of protocol steps and a JSON
# summary to $MODEL_OUT (default ${TMPDIR:-/tmp}/ms2m-model), and exits non-zero if the correct model violates a
# property or a mutant passes. Installs spin (and gcc) from Debian when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[ms2m model] %s\n' "$*" >&2; }

MODEL=${MODEL_FILE:-model/handoff.pml}  # MODEL_FILE: another model, e.g. to see the runner fail
OUT=${MODEL_OUT:-${TMPDIR:-/tmp}/ms2m-model}
[ -f "$MODEL" ] || { log "ERROR: $MODEL is missing"; exit 2; }

# ---- tools
install_pkgs() {
  local pkgs=("$@")
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; else
      log "ERROR: ${pkgs[*]} missing and not root; install them: sudo apt-get install -y ${pkgs[*]}"; exit 2
    fi
  else SUDO=; fi
  command -v apt-get >/dev/null || { log "ERROR: ${pkgs[*]} missing and no apt-get here; install spin (>= 6.4) and a C compiler"; exit 2; }
  log "installing ${pkgs[*]} (Debian packages)…"
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null ||
      { log "ERROR: apt-get install ${pkgs[*]} failed; install them by hand (apt-get install -y ${pkgs[*]})"; exit 2; }
  fi
}
missing=()
command -v spin >/dev/null || missing+=(spin)
command -v gcc >/dev/null || missing+=(gcc)
[ ${#missing[@]} -eq 0 ] || install_pkgs "${missing[@]}"
command -v spin >/dev/null && command -v gcc >/dev/null || { log "ERROR: spin or gcc still missing"; exit 2; }

mkdir -p "$OUT"
rm -f "$OUT"/*.trail.txt "$OUT"/summary.json
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ms2m-model-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }

# name | kind | spin defines | never claim | search (safety, live: -a, fair: -a -f) | expectation | what it checks.
# A mutant is checked against the claim its bug breaks (for most, all safety properties at once).
# A witness is a claim that something must NOT happen whose counterexample shows the correct model reaches it (so
# the properties cover it); a finding is a gap of the implementation the model shows, recorded until it is fixed
# (none open: F1 and F2 are fixed and are mutants now).
FAIR=${MODEL_FAIR:-0}
CHECKS=(
  "no_dup|property||no_dup|safety|holds|no instance applies a message twice"
  "no_loss|property||no_loss|safety|holds|every published message is applied by the serving instance or waits in P for it"
  "swap_exact|property||swap_exact|safety|holds|the caught-up copy stands at the fenced source's position, marks and apply sequence"
  "outputs_once|property||outputs_once|safety|holds|outputs of a message emitted once (a resend only for a lost source's)"
  "one_consumer|property||one_consumer|safety|holds|at the end exactly one live unfenced primary, no other instance alive"
  "terminates|liveness||terminates|live|holds|every run ends migrated, rolled back or adopted (no fairness assumed, which implies it under weak fairness)"
  "mutant_A_per_producer_bound|mutant|-DMUTANT_A|swap_exact|safety|fails|R bound to the exchange, copy bounded per producer (before the order fix)"
  "mutant_B_log_after_checkpoint|mutant|-DMUTANT_B|safety|safety|fails|the apply log (today's cut) starts after the checkpoint"
  "mutant_C_no_catch_up|mutant|-DMUTANT_C|safety|safety|fails|no catch-up to the fenced source's position"
  "mutant_D_activate_before_fence|mutant|-DMUTANT_D|safety|safety|fails|the copy is activated before the source is fenced"
  "mutant_E_no_epoch_check|mutant|-DMUTANT_E|safety|safety|fails|stale commands of an earlier migration are obeyed"
  "mutant_M_no_mark_skip|mutant|-DMUTANT_M|no_dup|safety|fails|the primary does not skip what its marks hold"
  "mutant_T_no_fence_timeout|mutant|-DMUTANT_T|terminates|fair|fails|the fence waits for a copy that may be dead, without a timeout"
  "mutant_F1_rollback_when_source_dead|mutant|-DMUTANT_F1_ROLLBACK_WHEN_SOURCE_DEAD|no_loss|safety|fails|rollback stops the copy and deletes R although the source is dead (finding F1, fixed)"
  "witness_F1_adopt_after_timeout|witness||no_f1_after_timeout|safety|fails|reachable: a catch-up timeout after the source died ends adopted, not rolled back (F1 is in the model)"
  "witness_F1_adopt_after_cancel|witness||no_f1_after_cancel|safety|fails|reachable: a cancellation of the replay after the source died ends adopted (F1 is in the model)"
  "mutant_F2_look_then_stop|mutant|-DMUTANT_F2_LOOK_THEN_STOP|no_loss|safety|fails|the rollback looks whether the source lives, then stops the copy and deletes R without unfencing it first (finding F2, fixed)"
  "witness_F2_adopt_when_source_dies_in_rollback|witness||no_f2_adopt|safety|fails|reachable: the source dies after the rollback started, its unfence gets no answer, the copy adopts (F2 is in the model)"
)

# MODEL_FAIR=1: also check termination under weak fairness (pan -a -f), about 3x the time of the run without
[ "$FAIR" = 1 ] && CHECKS+=("terminates_fair|liveness||terminates|fair|holds|every run ends migrated, rolled back or adopted under weak fairness")

build() { # defines search opt -> the directory of its pan (mutants explore little: a quick -O0 compile pays off)
  local defs=$1 search=$2 opt=$3 key dir flags
  [ "$search" = safety ] && flags=-DSAFETY || flags=-DNFAIR=3
  key=$(printf '%s_%s' "$defs" "$flags" | tr -c 'A-Za-z0-9_' '_')
  dir=$WORK/b$key
  if [ ! -x "$dir/pan" ]; then
    mkdir -p "$dir"
    cp "$MODEL" "$dir/handoff.pml"
    (cd "$dir" && spin $defs -a handoff.pml >spin.log 2>&1) || { log "ERROR: spin $defs -a failed:"; cat "$dir/spin.log" >&2; exit 2; }
    (cd "$dir" && gcc $opt $flags -DVECTORSZ=2048 -o pan pan.c 2>gcc.log) || { log "ERROR: gcc failed:"; cat "$dir/gcc.log" >&2; exit 2; }
  fi
  printf '%s' "$dir"
}

# one search per check, each in its own directory (its pan.out and trail), MODEL_JOBS (default: the cores) at once
run_check() { # name builddir claim pan-args...
  local name=$1 dir=$2 claim=$3 rd t0
  shift 3
  rd=$WORK/run_$name
  mkdir -p "$rd" && cp "$dir/handoff.pml" "$rd/"
  t0=$(now)
  (cd "$rd" && "$dir/pan" -m300000 -w24 "$@" -N "$claim" >pan.out 2>&1) || true
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }' >"$rd/secs"
}
JOBS=${MODEL_JOBS:-$(nproc 2>/dev/null || echo 1)}
ROWS=()
JSON=()
bad=0
t_all=$(now)
for c in "${CHECKS[@]}"; do
  IFS='|' read -r name kind defs claim search expect what <<<"$c"
  opt=-O2; { [ "$kind" = mutant ] || [ "$kind" = finding ] || [ "$kind" = witness ]; } && opt=-O0
  dir=$(build "$defs" "$search" "$opt")
  case $search in
    safety) args=() ;;
    live) args=(-a) ;;
    fair) args=(-a -f) ;;
  esac
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  log "checking $name ($what)…"
  run_check "$name" "$dir" "$claim" "${args[@]}" &
done
wait
for c in "${CHECKS[@]}"; do
  IFS='|' read -r name kind defs claim search expect what <<<"$c"
  dir=$WORK/run_$name
  secs=$(cat "$dir/secs" 2>/dev/null || echo 0)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$dir/pan.out" | tail -1)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$dir/pan.out" | tail -1)
  incomplete=$(grep -c 'Search not completed\|max search depth too small' "$dir/pan.out" || true)
  [ -n "$errors" ] || { log "ERROR: pan gave no result for $name:"; tail -20 "$dir/pan.out" >&2; exit 2; }
  if [ "$errors" = 0 ]; then result=holds; else result="counterexample"; fi
  violated=""
  trailpath=""
  if [ "$errors" != 0 ] && [ -f "$dir/handoff.pml.trail" ]; then
    trail=$OUT/$name.trail.txt
    trailpath=$trail
    (cd "$dir" && spin -t $defs handoff.pml 2>&1) | grep -E '@|START OF CYCLE' | sed -e 's/^ *@ //' -e 's/\bI0\b/source/g' -e 's/\bI1\b/copy/g' >"$trail" || true
    if [ "$claim" = terminates ]; then
      echo "!! from here the run never ends migrated, rolled back or adopted (an acceptance cycle of <> done)" >>"$trail"
    fi
    violated=$(grep '^!!' "$trail" | head -1 | sed 's/^!! //' || true)  # a witness's trail has no violation
  fi
  ok=1
  if [ "$expect" = holds ] && { [ "$errors" != 0 ] || [ "$incomplete" != 0 ]; }; then ok=0; fi
  if [ "$expect" = fails ] && [ "$errors" = 0 ]; then ok=0; fi
  [ "$ok" = 1 ] || bad=1
  verdict=$([ "$ok" = 1 ] && echo ok || echo UNEXPECTED)
  ROWS+=("$name|$kind|$states|$result|${secs}s|$verdict")
  JSON+=("$(printf '{"name":"%s","kind":"%s","states":%s,"result":"%s","expected":"%s","ok":%s,"seconds":%s,"complete":%s,"violated":"%s","trail":"%s"}' \
    "$name" "$kind" "${states:-0}" "$result" "$( [ "$expect" = holds ] && echo holds || echo counterexample)" \
    "$( [ "$ok" = 1 ] && echo true || echo false)" "$secs" "$( [ "$incomplete" = 0 ] && echo true || echo false)" \
    "${violated//\"/\'}" "$trailpath")")
done
total=$(awk -v a="$t_all" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')

# ---- the counterexamples, as protocol steps
for f in "$OUT"/*.trail.txt; do
  [ -e "$f" ] || continue
  printf '\n== counterexample: %s (%s)\n' "$(basename "$f" .trail.txt)" "$f"
  sed 's/^/   /' "$f"
done

# ---- the table
printf '\n%s: 2 producers x %s messages, <=1 instance crash, <=1 connection loss, <=1 orchestrator restart, 1 stale command\n\n' \
  "$MODEL" "$(sed -n 's/^#define NS \([0-9]*\).*/\1/p' "$MODEL" | head -1)"
{
  echo "check|kind|states|result|time|verdict"
  for r in "${ROWS[@]}"; do echo "$r"; done
} | column -t -s '|'
printf '\ntotal %ss\n' "$total"

(IFS=,; printf '{"model":"%s","totalSeconds":%s,"ok":%s,"checks":[%s]}\n' "$MODEL" "$total" "$( [ "$bad" = 0 ] && echo true || echo false)" "${JSON[*]}") >"$OUT/summary.json"
log "summary: $OUT/summary.json"
if [ "$bad" != 0 ]; then
  log "FAILED: a property of the correct model is violated, a search was incomplete, or a mutant was not caught (rows marked UNEXPECTED)"
  exit 1
fi
log "every property holds; every mutant, witness and recorded finding yields a counterexample"
