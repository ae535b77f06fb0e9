"""PyTorch CPU reference for kd-ts's benchmarks: one knowledge-distillation
training step (student forward + backward + Adam) for the same three students
as bench/run.ts, at batch 128, on one thread.

Run:  python3 bench/reference/kd_step.py [--runs 5] [--threads 1]
Needs Debian's python3-torch; install libopenblas0-pthread too, or torch's
generic BLAS build falls back to the slow reference BLAS for matrix products.
Prints one JSON object on stdout (bench/run.ts reads it).

Models (keep in sync with bench/models.ts):
- mlp:    784-800-800-10, ReLU; KL at T=4 x T^2 against fixed teacher logits.
- bilstm: embedding 10000x100 -> BiLSTM 150 (last states of both directions,
          concatenated) -> Dense 200 ReLU -> 2 logits; 32 tokens; MSE on logits
          summed over classes (Tang et al.).
- conv:   28x28x1 -> Conv 3x3x16 ReLU -> MaxPool 2 -> Conv 3x3x32 ReLU ->
          MaxPool 2 -> Dense 10 ('valid' padding); KL at T=4 x T^2.
"""
import argparse
import json
import os
import sys

# One thread for real: torch.set_num_threads does not bind OpenBLAS's own
# pthread pool, which otherwise takes the second core on an idle machine and
# makes the wall-clock comparison with single-threaded wasm unfair.
_threads = sys.argv[sys.argv.index('--threads') + 1] if '--threads' in sys.argv else '1'
for _var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, _threads)
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 128
TEMPERATURE = 4.0


class BiLstmStudent(nn.Module):
    def __init__(self, vocab=10000, dim=100, hidden=150, fc=200, classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, fc)
        self.out = nn.Linear(fc, classes)

    def forward(self, tokens):
        _, (h, _) = self.lstm(self.embedding(tokens))
        last = torch.cat([h[0], h[1]], dim=-1)
        return self.out(F.relu(self.fc(last)))


def conv_student():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 10),
    )


def kl_t2(student, teacher):
    log_s = F.log_softmax(student / TEMPERATURE, dim=-1)
    log_t = F.log_softmax(teacher / TEMPERATURE, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1).mean() * TEMPERATURE ** 2


def mse_sum(student, teacher):
    return ((teacher - student) ** 2).sum(-1).mean()


def cases():
    g = torch.Generator().manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 800), nn.ReLU(), nn.Linear(800, 800), nn.ReLU(), nn.Linear(800, 10))
    yield 'mlp', mlp, torch.rand(BATCH, 784, generator=g), torch.randn(BATCH, 10, generator=g), kl_t2
    tokens = torch.randint(1, 10000, (BATCH, 32), generator=g)
    yield 'bilstm', BiLstmStudent(), tokens, torch.randn(BATCH, 2, generator=g), mse_sum
    yield 'conv', conv_student(), torch.rand(BATCH, 1, 28, 28, generator=g), torch.randn(BATCH, 10, generator=g), kl_t2


def measure(model, x, teacher, loss_fn, runs, min_seconds=0.5):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), teacher)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    # Steps per run: enough for min_seconds, measured once.
    start = time.perf_counter()
    step()
    per_step = time.perf_counter() - start
    steps = max(1, int(min_seconds / max(per_step, 1e-6)))
    rates = []
    # Samples per second of this process's CPU time: less sensitive than the
    # wall clock to other processes on a shared machine.
    cpu_rates = []
    for _ in range(runs):
        start = time.perf_counter()
        cpu_start = time.process_time()
        for _ in range(steps):
            step()
        rates.append(steps * BATCH / (time.perf_counter() - start))
        cpu_rates.append(steps * BATCH / max(time.process_time() - cpu_start, 1e-9))
    return statistics.median(rates), rates, cpu_rates


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def blas():
    try:
        target = os.path.realpath('/etc/alternatives/libblas.so.3-x86_64-linux-gnu')
        return os.path.basename(os.path.dirname(target)) or target
    except OSError:
        return 'unknown'


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    results = []
    for name, model, x, teacher, loss_fn in cases():
        median, rates, cpu_rates = measure(model, x, teacher, loss_fn, args.runs)
        results.append({'model': name, 'samples_per_s': median, 'runs': rates,
                        'cpu_samples_per_s': statistics.median(cpu_rates), 'cpu_runs': cpu_rates})
    print(json.dumps({
        'torch': torch.__version__, 'threads': args.threads, 'batch': BATCH,
        'cpu': cpu_model(), 'blas': blas(), 'results': results,
    }))


if __name__ == '__main__':
    main()
