#!/bin/bash
# Kill-and-resume of `--full --checkpoint`: a straight run, and a run SIGKILLed during the distilled student's second epoch, then run again.
# Run: bash examples/mnist/kill-resume.sh (about 2 minutes of one core; prints whether the two learning curves are identical)
set -u
cd "$(dirname "$0")/../.."
ARGS="--full --seeds 0 --epochs 3 --teacher-epochs 2 --only s800-kd"
R=$(mktemp -d)  # everything goes here; the summary is printed at the end
start=$(date +%s)
npx tsx examples/mnist/main.ts $ARGS --out $R/straight-out --checkpoint $R/straight-ckpt > $R/straight.log 2>&1
echo "straight: rc=$? $(( $(date +%s) - start )) s"
npx tsx examples/mnist/main.ts $ARGS --out $R/killed-out --checkpoint $R/ckpt > $R/killed.log 2>&1 &
pid=$!
# Wait for the student's first epoch-end checkpoint (a step-*.json under the student's store), then kill the process group.
while ! find $R/ckpt -path '*s800-kd*' -name 'step-*.json' 2>/dev/null | grep -q .; do sleep 0.5; if ! kill -0 $pid 2>/dev/null; then echo "finished before the kill"; break; fi; done
sleep 3
pkill -KILL -f "examples/mnist/main.ts $ARGS --out $R/killed-out" ; wait $pid; echo "killed: rc=$?"
echo "store at the kill:"; find $R/ckpt -type f | sort
npx tsx examples/mnist/main.ts $ARGS --out $R/killed-out --checkpoint $R/ckpt > $R/resumed.log 2>&1
echo "resumed: rc=$?"
grep -h "s800-kd\|teacher" $R/straight.log $R/resumed.log | grep -v epoch
node -e "
const a=require('$R/straight-out/seed-0.json'), b=require('$R/killed-out/seed-0.json');
const pick=(r)=>r.runs?r.runs:r;
console.log(JSON.stringify(pick(a)).length, JSON.stringify(pick(b)).length);
const ra=(a.runs||a.results||[]).map(r=>[r.key,r.testErrors,JSON.stringify(r.curve)]);
const rb=(b.runs||b.results||[]).map(r=>[r.key,r.testErrors,JSON.stringify(r.curve)]);
console.log('straight', ra.map(r=>r.slice(0,2))); console.log('resumed ', rb.map(r=>r.slice(0,2)));
console.log('curves identical:', JSON.stringify(ra)===JSON.stringify(rb));
"
