#!/usr/bin/env bash
# Our published answer to "does sharing help?", in parts that each fit a session:
#
#   bash benchmarks/claims/run.sh digits|digits-until|acgan|grid25|ring8|cogan|e1|e1-long|e2|e2-long|e3|all [--seeds N]
#
# Each part is one `mtgan bench` (3 seeds, 2 runs side by side, cores/2 threads each) into
# runs/claims/<part>; an interrupted part resumes where it stopped when run again. The table,
# notes and curves are then copied into benchmarks/claims/<part>/ for the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
part=${1:?"usage: run.sh digits|digits-until|acgan|grid25|ring8|cogan|e1|e1-long|e2|e2-long|e3|all [--seeds N]"}
shift
seeds=(--seeds 3)
[[ $# -gt 0 ]] && seeds=("$@")

bench() {  # name, then mtgan bench arguments
    local name=$1
    shift
    local start=$SECONDS
    mkdir -p "benchmarks/claims/$name"
    # the start on record first: an invocation cut off (a session's end) leaves its start, and
    # its runs' last metrics.jsonl lines say when it stopped
    echo "$name: started $(date -u +%FT%TZ)" >>"benchmarks/claims/$name/wall.txt"
    mtgan bench "$@" "${seeds[@]}" --jobs 2 --out "runs/claims/$name" --quiet
    # the tables again over every run the directory holds: a bench writes only its own values
    # (e1 adds one --sweep value at a time to the same directory)
    mtgan report "runs/claims/$name" >/dev/null
    cp "runs/claims/$name/"{summary.md,summary.csv,runs.csv} "benchmarks/claims/$name/"
    cp "runs/claims/$name/figures/"*.png "benchmarks/claims/$name/"
    echo "$name: $((SECONDS - start)) s wall (this invocation), finished $(date -u +%FT%TZ)" |
        tee -a "benchmarks/claims/$name/wall.txt"
}

targets() {  # name, then --target METRIC=VALUE ...: the table again at these targets
    local name=$1
    shift
    mtgan report "runs/claims/$name" "$@" >/dev/null
    cp "runs/claims/$name/summary.md" "benchmarks/claims/$name/summary-targets.md"
    mtgan report "runs/claims/$name" >/dev/null  # back to the default table and page
}

e1() {  # prefix, cap, then extra overrides
    local prefix=$1 cap=$2
    shift 2
    # one value at a time, plain then augmented, so the smallest N is complete first (the
    # bench adds each value to the same directories: the same runs as one sweep)
    for n in 10 25 100; do
        local args=(independent pertask cgan --sweep data.per_task=$n train.steps=$cap
            train.precision=fp32 data.heldout=0.2 eval.reference=heldout
            train.until.metric=kid train.until.patience=3 --metrics kid,fid
            --baseline independent "$@")
        bench "$prefix-plain" "${args[@]}"
        bench "$prefix-augment" "${args[@]}" "loss.augment=[translation,cutout,color]"
    done
}

e2() {  # prefix, cap, source task (train.init_task), then extra overrides; the pretrained
    # runs are shared (runs/claims/e2)
    local prefix=$1 cap=$2 source=$3
    shift 3
    for d in 9 4 7; do
        nine=$(python -c "print([[i] for i in range(10) if i != $d])" | tr -d ' ')
        pre=runs/claims/e2/pretrain-$d
        if [[ -d $pre ]]; then
            mtgan train --resume "$pre" --quiet
        else
            mtgan train pertask "data.tasks=$nine" data.heldout=0.2 train.steps=3000 \
                train.precision=fp32 --out "$pre" --quiet
        fi
        new=("data.tasks=[[$d]]" --sweep data.per_task=5,25 data.heldout=0.2
            eval.reference=heldout train.steps=$cap train.precision=fp32
            train.until.metric=kid train.until.patience=3 --metrics kid,fid "$@")
        transfer=("train.init_from=$pre" "train.init_task=$source")
        bench "$prefix-$d-fresh" pertask "${new[@]}" "loss.augment=[translation,cutout,color]"
        bench "$prefix-$d-finetuned" pertask "${new[@]}" "${transfer[@]}"
        bench "$prefix-$d-finetuned-augment" pertask "${new[@]}" "${transfer[@]}" \
            "loss.augment=[translation,cutout,color]"
        bench "$prefix-$d-frozen" pertask "${new[@]}" "${transfer[@]}" \
            "model.freeze=[generator.blocks.1,discriminator.blocks.1]"
    done
}

case $part in
    # (a) sharing vs not on the bundled digits: the same 3,000 steps for every preset
    digits)
        bench digits independent pertask seed seed-gd acgan train.steps=3000
        targets digits --target fid=100 --target fid_pooled=60 --target accuracy=0.95 ;;
    # (a) the same question on the stated protocol: FID against held-out digits (a fifth set
    # aside before training), each run stopped once FID has not improved for 3 evaluations
    # (900 steps), at most the same 3,000 steps; Δm % against the single-task baseline
    digits-until)
        bench digits-until independent pertask seed seed-gd acgan train.steps=3000 \
            data.heldout=0.2 eval.reference=heldout train.until.metric=fid \
            train.until.patience=3 --baseline independent ;;
    # (a) AC-GAN at its own budget (15,000 steps: one conditional G sees 1/10 of the images)
    acgan) bench acgan acgan ;;
    # (b) one generator vs several / several discriminators on the 2D mixtures (PacGAN protocol)
    grid25)
        bench grid25 gan-2d mgan-2d gman-2d madgan-2d data.name=grid25
        targets grid25 --target modes=24 --target hq=93.6 --target rkl=0.1 ;;
    ring8)
        bench ring8 gan-2d mgan-2d gman-2d madgan-2d data.name=ring8
        targets ring8 --target hq=95 --target rkl=0.1 ;;
    # (c) the coupled pair
    cogan) bench cogan cogan-edges cogan-negative ;;
    # E1, where sharing should win: little data per task. Nothing shared (independent), shared
    # trunks (pertask) and everything shared (cgan: projection D, conditional BN) at 10, 25 and
    # 100 training images per digit, without and with DiffAugment; per-digit KID against
    # held-out digits (a fifth set aside before the per-task draw), each run stopped once KID
    # has not improved for 3 evaluations (900 steps), at most 3,000 steps; every run in float32
    # (`auto` may pick bf16 for some presets and not others on one machine: not comparable)
    e1) e1 e1 3000 ;;
    # E1 again run to convergence: a 10,000-step cap that KID's patience should stop before, and
    # an EMA whose half-life grows with the run (train.ema_rampup, ADA's 0.05) so the averaged
    # generator is not mostly its start (at 3,000 steps the 0.999 EMA lagged the live one); KID
    # every 300 steps as in e1, so patience is the same 900 steps, and a gain must be at least
    # 1 % of the best KID (an EMA's KID creeps down by a hair long after it has levelled off)
    e1-long) e1 e1-long 10000 --eval-every 300 train.ema_rampup=0.05 \
        train.until.min_rel_delta=0.01 ;;
    # E2, a new task from trained ones: pertask pretrained on nine digits (3,000 steps), then
    # the held-out tenth from 5 or 25 images, for three held-out digits: its trunks fine-tuned
    # (without and with DiffAugment), its trunks frozen (all start the new digit's own layers
    # as copies of source task 0's), and a fresh GAN with DiffAugment; per-digit KID against the tenth's held-out fifth, each
    # run stopped once KID has not improved for 3 evaluations, at most 2,000 steps; float32
    e2) e2 e2 2000 0 ;;
    # E2 again run to convergence: a 6,000-step cap, KID every 200 steps as in e2 (the same
    # 600-step patience, gains of at least 1 % as in e1-long), and the ramped-up EMA (at 2,000
    # steps the 0.999 EMA still held 14 % of its start: for a transfer, the source digit's G);
    # the transfers copy the source task nearest the new digit's images (init_task=nearest)
    # where e2 copied digit 0's into every held-out digit. Run it with --seeds 5, as e2.
    e2-long) e2 e2-long 6000 nearest --eval-every 200 train.ema_rampup=0.05 \
        train.until.min_rel_delta=0.01 ;;
    # E3, where sharing should hurt: ring8 split into two tasks whose modes half coincide,
    # [0,1,2,3] and [2,3,4,5], gan-2d's networks and 40,000 steps (PacGAN protocol): two
    # independent GANs, per-task heads on a shared D trunk, one shared D with a task-classifying
    # head (loss.task_id: TAC-GAN's setting), and that D without the head; the overlap metric
    # says whether each task's samples fill the shared modes as its data does (1) or not
    e3) bench e3 benchmarks/claims/e3/{independent,heads,classifier,shared}.yaml ;;
    all) for p in digits digits-until acgan grid25 ring8 cogan e1 e2 e3; do "$0" "$p" "${seeds[@]}"; done ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
esac
