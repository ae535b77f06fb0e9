"""PyTorch CPU reference for bench/inference.ts: the BiLSTM student's
inference (forward only, no autograd) at batch 1 and 64, 32 tokens, on one
thread. Same model as kd_step.py's BiLstmStudent.

Run:  python3 bench/reference/bilstm_infer.py [--runs 7]
Prints one JSON object on stdout: median milliseconds per batch, per batch size.
"""
import os
import sys

for _var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')
import argparse
import json
import statistics
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from kd_step import BiLstmStudent  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--runs', type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = BiLstmStudent().eval()
    result = {'torch': torch.__version__, 'threads': 1, 'ms_per_batch': {}}
    for batch in (1, 64):
        tokens = torch.randint(1, 10000, (batch, 32))
        with torch.inference_mode():
            for _ in range(3):
                model(tokens)
            times = []
            for _ in range(args.runs):
                n, start = 0, time.perf_counter()
                while True:
                    model(tokens)
                    n += 1
                    elapsed = time.perf_counter() - start
                    if elapsed >= 0.3:
                        break
                times.append(1000 * elapsed / n)
        result['ms_per_batch'][str(batch)] = statistics.median(times)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
