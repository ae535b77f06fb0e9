#!/usr/bin/env python3
"""SST-2 teacher for examples/sst2, route (a): trained and run in PyTorch.

Trains an ensemble of word-level CNNs (Kim 2014: filters of widths 3, 4 and 5,
100 each, ReLU, max over time, dropout 0.5; random 300-d embeddings) on the
GLUE SST-2 training rows, reports their dev accuracy, and scores a transfer
set exported by the kd-ts example (JSON Lines, one {"id": ..., "text": ...}
per line) into a teacher-output file kd-ts reads by id:

- NPY (default): <out>.npy, float32 [N, 2] logits, plus <out>.ids.json (the
  ids in row order, as JSON, so integer and string ids keep their type);
- JSONL: one {"id": ..., "logits": [a, b]} per line.

It also writes <out-stem>.meta.json (dev accuracies, parameter count, timing)
that the example prints in its table. The ensemble's output is the mean of
the members' logits, as kd-ts's EnsembleTeacher 'mean-logits' does.

Padding never changes a score: the max over time only takes windows that
start inside the sentence (sentences shorter than the widest filter are
padded up to it, and their first window counts), so a row gets the same
logits whatever batch it is scored in.

Run with Debian's PyTorch (torch 1.13, numpy; nothing else, no network):

    /usr/bin/python3 examples/sst2/teacher/train_teacher.py \\
        --data ../shared/data/sst2 --transfer .tmp/sst2/transfer.jsonl --out .tmp/sst2/teacher.npy

Use /usr/bin/python3, not a `python3` that a pyenv shim puts first on PATH.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, UNK = 0, 1
WIDTHS = (3, 4, 5)


def main():
    args = parse_args()
    # One thread by default: reproducible, and fair on a shared machine. Say so explicitly,
    # since torch otherwise takes every core.
    torch.set_num_threads(args.threads)
    started = time.time()

    train = read_tsv(os.path.join(args.data, "train.tsv"))
    if args.train_rows is not None:
        train = train[:args.train_rows]
    dev = read_tsv(os.path.join(args.data, "dev.tsv"))
    vocab = build_vocab(s for s, _ in train)
    log(f"train {len(train)} rows, dev {len(dev)}; vocabulary {len(vocab)} (with <pad>, <unk>); "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")

    train_ids = [encode(s, vocab, args.max_length) for s, _ in train]
    train_labels = [y for _, y in train]
    dev_ids = [encode(s, vocab, args.max_length) for s, _ in dev]
    dev_labels = np.array([y for _, y in dev])

    saved, saved_seconds = load_members(args, len(vocab))
    members, member_acc, member_seconds = [], [], []
    for k in range(args.members):
        seed = args.seed * 1000 + k
        t0 = time.time()
        if k < len(saved):
            model = saved[k]
            member_seconds.append(saved_seconds[k])
        else:
            model = train_member(train_ids, train_labels, len(vocab), seed, args)
            member_seconds.append(time.time() - t0)
            if args.models is not None:
                # Saved after each member, so an interrupted run keeps what it trained.
                state = [m.state_dict() for m in members] + [model.state_dict()]
                torch.save({"args": model_args(args), "members": state, "seconds": member_seconds}, args.models)
                log(f"saved {len(state)} member(s) to {args.models}")
        acc = accuracy(score(model, dev_ids, args.batch_size), dev_labels)
        member_acc.append(acc)
        log(f"member {k} (seed {seed}): dev accuracy {100 * acc:.2f} %, {member_seconds[-1]:.0f} s")
        members.append(model)
    ensemble_dev = np.mean([score(m, dev_ids, args.batch_size) for m in members], axis=0)
    ensemble_acc = accuracy(ensemble_dev, dev_labels)
    log(f"ensemble of {len(members)} (mean logits): dev accuracy {100 * ensemble_acc:.2f} %")

    dev_ms = time_dev(members, dev_ids)
    log(f"ensemble inference: {dev_ms:.0f} ms per 1,000 dev sentences (first 256, padded to the longest, median of 3)")
    meta = {
        "teacher": f"ensemble of {len(members)} CNNs (filters 3/4/5 x 100, dropout 0.5, random 300-d embeddings)",
        "members": len(members),
        "member_dev_accuracy": member_acc,
        "dev_accuracy": ensemble_acc,
        "parameters": sum(p.numel() for m in members for p in m.parameters()),
        "vocabulary": len(vocab),
        "epochs": args.epochs,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "train_seconds": sum(member_seconds),
        "dev_ms_per_1000": dev_ms,
    }

    if args.transfer is not None:
        ids, texts = read_transfer(args.transfer)
        t0 = time.time()
        encoded = [encode(t, vocab, args.max_length) for t in texts]
        logits = np.mean([score(m, encoded, 500) for m in members], axis=0).astype(np.float32)
        meta["transfer_rows"] = len(ids)
        meta["score_seconds"] = time.time() - t0
        write_outputs(args.out, ids, logits)
        log(f"scored {len(ids)} transfer rows in {meta['score_seconds']:.0f} s -> {args.out}")

    meta["total_seconds"] = time.time() - started
    meta_path = os.path.splitext(args.out)[0] + ".meta.json"
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2)
    log(f"wrote {meta_path}; {meta['total_seconds']:.0f} s in all")


class TextCnn(nn.Module):
    """Embedding -> Conv1d per width -> ReLU -> max over valid windows -> dropout -> linear."""

    def __init__(self, vocab_size, embedding_dim, filters, dropout, classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        # Kim (2014)'s random vectors, U(-0.25, 0.25), as the tfjs teacher and kd-ts's student draw them.
        # (PyTorch's default N(0, 1) is 7x larger: Adam at 1e-3 then learns far more slowly: 66.5 % dev
        # against 78.6 % after 2 epochs on 10k rows.)
        nn.init.uniform_(self.embedding.weight, -0.25, 0.25)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, filters, w) for w in WIDTHS)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(filters * len(WIDTHS), classes)

    def forward(self, ids):  # ids: [batch, time], time >= max(WIDTHS), PAD on the right
        lengths = (ids != PAD).sum(1)
        x = self.embedding(ids).transpose(1, 2)  # [batch, emb, time]
        pooled = []
        for width, conv in zip(WIDTHS, self.convs):
            h = F.relu(conv(x))  # [batch, filters, time - width + 1]
            starts = torch.arange(h.shape[2], device=ids.device)
            # Windows that start inside the sentence and end inside it, or the first one.
            valid = starts[None, :] < torch.clamp(lengths - width + 1, min=1)[:, None]
            h = h.masked_fill(~valid[:, None, :], float("-inf"))
            pooled.append(h.max(2).values)
        return self.out(self.dropout(torch.cat(pooled, 1)))


def model_args(args):
    """What must match for saved members to be reused."""
    keys = ("epochs", "seed", "embedding_dim", "filters", "dropout", "lr", "batch_size", "max_length", "train_rows")
    return {k: getattr(args, k) for k in keys}


def load_members(args, vocab_size):
    """The members saved by an earlier run with the same settings (--models) and their training times, or []."""
    if args.models is None or not os.path.exists(args.models):
        return [], []
    saved = torch.load(args.models)
    if saved["args"] != model_args(args):
        sys.exit(f"{args.models} was trained with other settings ({saved['args']}): delete it or pass another --models")
    members = []
    for state in saved["members"][:args.members]:
        model = TextCnn(vocab_size, args.embedding_dim, args.filters, args.dropout)
        model.load_state_dict(state)
        model.eval()
        members.append(model)
    log(f"loaded {len(members)} trained member(s) from {args.models}")
    return members, saved["seconds"][:len(members)]


def train_member(ids, labels, vocab_size, seed, args):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = TextCnn(vocab_size, args.embedding_dim, args.filters, args.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        model.train()
        t0, total, seen = time.time(), 0.0, 0
        for batch in length_buckets(ids, args.batch_size, rng):
            x = pad([ids[i] for i in batch])
            y = torch.tensor([labels[i] for i in batch])
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        log(f"  seed {seed} epoch {epoch + 1}/{args.epochs}: loss {total / seen:.4f}, {time.time() - t0:.0f} s")
    model.eval()
    return model


def length_buckets(ids, batch_size, rng):
    """Batches of similar lengths (little padding), in random order; reshuffled per call."""
    order = list(range(len(ids)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: len(ids[i]))
        batches.extend(part[k:k + batch_size] for k in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def score(model, ids, batch_size):
    """Logits [N, 2] in the order of `ids`, scored in length-sorted batches."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), 2), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            out[batch] = model(pad([ids[i] for i in batch])).numpy()
    return out


def time_dev(members, dev_ids, rows=256, repeats=3):
    """Ensemble inference time per 1,000 sentences, as the example times the student: the first `rows`
    dev sentences padded to the longest dev sentence, one batch, median of `repeats` runs after a warm-up."""
    width = max(max(WIDTHS), max(len(r) for r in dev_ids))
    x = torch.zeros((min(rows, len(dev_ids)), width), dtype=torch.long)
    for i, r in enumerate(dev_ids[:rows]):
        x[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    times = []
    with torch.no_grad():
        for repeat in range(repeats + 1):
            t0 = time.perf_counter()
            torch.stack([m(x) for m in members]).mean(0).numpy()
            if repeat > 0:
                times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1000 * 1000 / x.shape[0]


def pad(rows):
    width = max(max(WIDTHS), max(len(r) for r in rows))
    x = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return x


def read_tsv(path):
    if not os.path.exists(path):
        sys.exit(f"{path} not found: --data must be the GLUE SST-2 folder holding train.tsv and dev.tsv")
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n")
        if header != "sentence\tlabel":
            sys.exit(f"{path}: expected the header 'sentence<TAB>label', got {header!r}")
        for n, line in enumerate(f, start=2):
            sentence, sep, label = line.rstrip("\n").rpartition("\t")
            if sep == "" or label not in ("0", "1"):
                sys.exit(f"{path} line {n}: expected 'sentence<TAB>0|1'")
            rows.append((sentence, int(label)))
    return rows


def read_transfer(path):
    ids, texts = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "id" not in row or "text" not in row:
                sys.exit(f"{path} line {n}: expected {{\"id\": ..., \"text\": ...}}")
            ids.append(row["id"])
            texts.append(row["text"])
    return ids, texts


def build_vocab(sentences):
    """Every training token (SST-2 is lower-cased and tokenized already), by frequency."""
    counts = {}
    for s in sentences:
        for token in s.split():
            counts[token] = counts.get(token, 0) + 1
    vocab = {"<pad>": PAD, "<unk>": UNK}
    for token, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        vocab[token] = len(vocab)
    return vocab


def encode(sentence, vocab, max_length):
    # Tokens it never saw (kd-ts's <mask> included) read as <unk>.
    return [vocab.get(t, UNK) for t in sentence.split()[:max_length]] or [UNK]


def accuracy(logits, labels):
    return float((logits.argmax(1) == labels).mean())


def write_outputs(path, ids, logits):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".npy"):
        np.save(path, logits)
        with open(path[:-len(".npy")] + ".ids.json", "w") as f:
            json.dump(ids, f)
    elif path.endswith(".jsonl"):
        with open(path, "w") as f:
            for example_id, row in zip(ids, logits):
                # float(np.float32) is the exact value: it reads back bit for bit.
                f.write(json.dumps({"id": example_id, "logits": [float(v) for v in row]}) + "\n")
    else:
        sys.exit(f"--out must end in .npy or .jsonl, got {path}")


def log(message):
    print(message, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="GLUE SST-2 folder (train.tsv, dev.tsv)")
    p.add_argument("--transfer", help="transfer-set JSONL exported by the example; omit to train and report only")
    p.add_argument("--out", default="teacher.npy", help="teacher outputs: .npy (+ .ids.json) or .jsonl")
    p.add_argument("--models", help="save each trained member here (.pt); members already in the file are loaded, not trained again")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--embedding-dim", type=int, default=300)
    p.add_argument("--filters", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--max-length", type=int, default=50)
    p.add_argument("--train-rows", type=int, help="train on the first N rows only (a quick check)")
    args = p.parse_args()
    if args.members < 1 or args.epochs < 1 or args.threads < 1:
        p.error("--members, --epochs and --threads must be at least 1")
    return args


if __name__ == "__main__":
    main()
