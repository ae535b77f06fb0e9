#!/bin/bash
# Kill-and-resume of the SST-2 example's `--checkpoint DIR`: an uninterrupted run, and a run SIGKILLed in the middle
# of the augmented distillation (after its step-200 checkpoint, before its epoch ends), then the same command again.
# Run: bash examples/sst2/kill-resume.sh path/to/SST-2 (about 8 minutes of one core); prints both results.
set -u
cd "$(dirname "$0")/../.."
DATA=${1:-../shared/data/sst2}
ARGS="--data $DATA --train-rows 6000 --epochs 1 --aug-passes 1 --teacher-members 1 --teacher-epochs 1 --seeds 0"
R=$(mktemp -d)
npx tsx examples/sst2/main.ts $ARGS --checkpoint $R/straight-ckpt --out $R/straight.json > $R/straight.log 2>&1
echo "straight: rc=$?"
npx tsx examples/sst2/main.ts $ARGS --checkpoint $R/ckpt --out $R/resumed.json > $R/killed.log 2>&1 &
pid=$!
while ! ls $R/ckpt/*distil-aug*/step-000000200.json >/dev/null 2>&1; do sleep 0.2; kill -0 $pid 2>/dev/null || { echo "finished before the kill"; break; }; done
pkill -KILL -f "examples/sst2/main.ts $ARGS --checkpoint $R/ckpt"; wait $pid; echo "killed: rc=$?"
echo "store at the kill:"; (cd $R/ckpt && find . -type f | sort)
npx tsx examples/sst2/main.ts $ARGS --checkpoint $R/ckpt --out $R/resumed.json > $R/resumed.log 2>&1
echo "resumed: rc=$?"
grep -h "BiLSTM distilled" $R/straight.log $R/resumed.log
node -e "
const a = require('$R/straight.json'), b = require('$R/resumed.json');
// Times, paths and the teacher's call count (the resumed run scores only what it redoes) differ by design.
const strip = (o) => JSON.stringify(o, (k, v) => (/[sS]econds|msPer1000|^out$|^checkpoint$|teacherCalls/.test(k) ? undefined : v));
console.log('results identical but for times, paths and teacher calls:', strip(a) === strip(b));
"
echo "folder: $R"
