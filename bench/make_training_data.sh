#!/usr/bin/env bash
# Regenerates the training data of the bundled model (detector/train.py): simulated captures
# (`iotwatch simulate`, no privileges) + real-tool captures recorded in the namespace lab
# (`iotwatch lab record`, root; the lab tools of captures/lab_packages.txt installed by `bash dev.sh setup`).
#
#   sudo bash bench/make_training_data.sh [DATA_DIR]          default DATA_DIR=/work/data
#   ONLY=simulated|recorded|heldout bash bench/make_training_data.sh     one part only
#
# Layout written (NOT in git: several hundred MB):
#   DATA_DIR/simulated/*.pcapng (+ .labels.csv)          synthetic smart homes, seeds 1-5
#   DATA_DIR/recorded/lab-<family>-seed11.pcapng (+ .labels.csv, .lab.json)
#                                                         one real-tool recording per family + benign
#   DATA_DIR/recorded-heldout/lab-all-seed99.pcapng       held-out evaluation capture: every family,
#                                                         other seed => other victims, sizes, order,
#                                                         timing and attacker address; used by no training run
# Recording takes ~20 minutes of wall time (the lab runs in real time). Every command is seeded;
# the simulated part is byte-identical for the same arguments, the recorded part has the same
# plan (tools, victims, order, budgets) but real timing.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-/work/data}
IOTWATCH=${IOTWATCH:-.venv/bin/iotwatch}
ONLY=${ONLY:-all}

if [ "$ONLY" = all ] || [ "$ONLY" = simulated ]; then
  mkdir -p "$DATA/simulated"
  "$IOTWATCH" simulate --out "$DATA/simulated" --scenario home   --seed 1 --duration 5m
  "$IOTWATCH" simulate --out "$DATA/simulated" --scenario home   --seed 2 --duration 5m --devices 20
  "$IOTWATCH" simulate --out "$DATA/simulated" --scenario busy   --seed 3 --duration 5m
  "$IOTWATCH" simulate --out "$DATA/simulated" --scenario benign --seed 4 --duration 5m
  "$IOTWATCH" simulate --out "$DATA/simulated" --scenario home   --seed 5 --duration 5m --devices 6
fi

if [ "$ONLY" = all ] || [ "$ONLY" = recorded ]; then
  # scenario seed seconds: low-volume families (spoofing, bruteforce) get more time
  for spec in "benign 11 180" "recon 11 150" "dos 11 90" "bruteforce 11 200" "spoofing 11 300" "exfiltration 11 150"; do
    set -- $spec
    "$IOTWATCH" lab record --out "$DATA/recorded" --scenario "$1" --seed "$2" --duration "$3" --force
  done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = heldout ]; then
  "$IOTWATCH" lab record --out "$DATA/recorded-heldout" --scenario all --seed 99 --duration 360 --force
fi
