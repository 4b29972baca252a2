#!/usr/bin/env bash
# Regenerates the training and held-out data of the bundled model (detector/MODEL_CARD.md has the
# one training command): simulated captures (`iotwatch simulate`, no privileges) + real-tool
# captures recorded in the namespace lab (`iotwatch lab record`, root; the lab tools of
# captures/lab/packages.txt installed by `bash dev.sh setup`).
#
#   sudo bash bench/make_training_data.sh [DATA_DIR] [LAB_DIR]   defaults /work/data/detector /work/shared/data/lab
#                                                      (bench/train_default.sh's SIM_DIR and LAB_DIR)
#   ONLY=simulated|cycle|v6|recorded|heldout bash bench/make_training_data.sh     one part only (cycle: simv-cycle,
#                                                      v6: simv6; both are also part of "simulated")
#
# Layout written (NOT in git: a few GB):
#   DATA_DIR/simv-train/varied-seed*.pcapng (+ .labels.csv)  10 randomised homes (scenario varied: address
#                                                      plans, TTLs, rates, DNS visibility, mid-conversation
#                                                      starts, benign look-alikes), seeds 201-210, 2 minutes each
#   DATA_DIR/simv-cycle/varied-seed21*.pcapng (+ ...)  10 more varied homes, seeds 211-220, 2 minutes each,
#                                                      --variant-cycle 0-9: together every attack variant
#   DATA_DIR/simv6/varied6-seed23*.pcapng (+ ...)     10 varied6 homes (IPv6 floods, tunnels, alive6; benign
#                                                      traceroutes), seeds 231-240, 2 minutes each (trained on since /9)
#   DATA_DIR/sim-train/*.pcapng (+ .labels.csv)        15 classic homes, seeds 1-14 (home/busy), 25 (benign),
#                                                      2 minutes each
#   LAB_DIR/train/lab-*.pcapng (+ .labels.csv, .lab.json)
#                                                      one real-tool recording per family + benign, one of all
#   DATA_DIR/sim-held/{busy-seed101,home-seed102}.pcapng   held out: other seeds and device mixes, 4 minutes
#   DATA_DIR/simv-held/varied-seed{301,302}.pcapng    held out: randomised homes, 4 minutes
#   LAB_DIR/held/lab-all-seed90.pcapng                held out: another lab run (other victims, order, timing)
# Recording takes ~30 minutes of wall time (the lab runs in real time). Every command is seeded;
# the simulated part is byte-identical for the same arguments, the recorded part has the same
# plan (tools, victims, order, budgets) but real timing. After a change of the lab's labelling rules,
# `iotwatch lab relabel LAB_DIR/*/*.pcapng` relabels the recordings without recording again.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-/work/data/detector}
LAB=${2:-/work/shared/data/lab}
IOTWATCH=${IOTWATCH:-.venv/bin/iotwatch}
ONLY=${ONLY:-all}

if [ "$ONLY" = all ] || [ "$ONLY" = simulated ]; then
  for s in $(seq 201 210); do
    "$IOTWATCH" simulate --out "$D/simv-train" --seed "$s" --duration 2m --devices $((4 + (s * 7) % 17)) --scenario varied
  done
  for s in $(seq 1 14); do
    sc=home; [ $((s % 3)) -eq 0 ] && sc=busy
    "$IOTWATCH" simulate --out "$D/sim-train" --seed "$s" --duration 2m --devices $((4 + (s * 7) % 17)) --scenario "$sc"
  done
  "$IOTWATCH" simulate --out "$D/sim-train" --seed 25 --duration 2m --devices 12 --scenario benign
fi

if [ "$ONLY" = all ] || [ "$ONLY" = simulated ] || [ "$ONLY" = cycle ]; then
  # a series over every attack variant: home K takes each family's variants from K x episodes on
  for s in $(seq 211 220); do
    "$IOTWATCH" simulate --out "$D/simv-cycle" --seed "$s" --duration 2m --devices $((4 + (s * 7) % 17)) --scenario varied \
      --variant-cycle $((s - 211))
  done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = simulated ] || [ "$ONLY" = v6 ]; then
  # IPv6 attacks and benign traceroutes (scenario varied6; in the bundled model's data since /9)
  for s in $(seq 231 240); do
    "$IOTWATCH" simulate --out "$D/simv6" --seed "$s" --duration 2m --devices $((4 + (s * 7) % 17)) --scenario varied6
  done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = recorded ]; then
  for f in benign recon dos bruteforce spoofing exfiltration; do
    "$IOTWATCH" lab record --out "$LAB/train" --scenario "$f" --seed 11 --force
  done
  "$IOTWATCH" lab record --out "$LAB/train" --scenario all --seed 12 --duration 360 --force
fi

if [ "$ONLY" = all ] || [ "$ONLY" = heldout ]; then
  "$IOTWATCH" simulate --out "$D/sim-held" --seed 101 --duration 4m --devices 20 --scenario busy
  "$IOTWATCH" simulate --out "$D/sim-held" --seed 102 --duration 4m --devices 6 --scenario home
  "$IOTWATCH" simulate --out "$D/simv-held" --seed 301 --duration 4m --devices 16 --scenario varied
  "$IOTWATCH" simulate --out "$D/simv-held" --seed 302 --duration 4m --devices 7 --scenario varied
  "$IOTWATCH" lab record --out "$LAB/held" --scenario all --seed 90 --duration 360 --force
fi
