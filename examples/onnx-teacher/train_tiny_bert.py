#!/usr/bin/env python3
"""Trains a tiny BERT-shaped sentiment classifier on SST-2 and writes it in the
layout transformers.js loads (a local model folder, no download):

  tiny-bert-sst2/config.json            model_type "bert", 2 labels
  tiny-bert-sst2/tokenizer.json         a WordPiece tokenizer (BertNormalizer,
                                        BertPreTokenizer, [CLS] A [SEP]) in the
                                        Hugging Face tokenizers JSON schema
  tiny-bert-sst2/tokenizer_config.json
  tiny-bert-sst2/onnx/model.onnx        input_ids, attention_mask, token_type_ids
                                        (int64 [batch, sequence]) -> logits [batch, 2]
  tiny-bert-sst2/fixture.json           dev sentences, their token ids (this
                                        script's tokenizer) and PyTorch's float64
                                        logits, for the tests; dev accuracy, sizes

The model: token + position + segment embeddings (32-d), LayerNorm, two
post-LN encoder layers (2 heads, GELU feed-forward of 64), a masked mean over
the tokens, a tanh pooler and a linear classifier: about 85,000 parameters,
350 KB. Not a pretrained BERT: a BERT-shaped model small enough to commit,
trained for a few CPU minutes so its logits mean something (about 80 % dev
accuracy). The tokenizer is written here from a vocabulary counted on the
training sentences (whole words, frequent word starts and ##endings, every
character), and this script tokenizes exactly as transformers.js does
(checked by the opt-in test suite).

Debian: apt-get install python3-torch python3-onnx python3-numpy; then

  /usr/bin/python3 examples/onnx-teacher/train_tiny_bert.py --data ../shared/data/sst2
"""
import argparse
import json
import math
import os
import random
import time
import unicodedata
from collections import Counter

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
PAD, UNK, CLS, SEP = 0, 1, 2, 3


# ---------------------------------------------------------------- tokenizer
# The steps of Hugging Face's BertNormalizer, BertPreTokenizer and WordPiece
# model, as transformers.js runs them from tokenizer.json.

def is_control(ch):
    if ch in '\t\n\r':
        return False
    return unicodedata.category(ch) in ('Cc', 'Cf', 'Co', 'Cs')


def is_chinese(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def normalize(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        if is_chinese(cp):
            out.append(f' {ch} ')
        else:
            out.append(' ' if ch.isspace() else ch)
    text = ''.join(out).lower()
    return ''.join(c for c in unicodedata.normalize('NFD', text) if unicodedata.category(c) != 'Mn')


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith('P')


def pre_tokenize(text):
    words, current = [], []
    for ch in text.strip():
        if ch.isspace() or is_punctuation(ch):
            if current:
                words.append(''.join(current))
                current = []
            if not ch.isspace():
                words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append(''.join(current))
    return words


def wordpiece(word, vocab, max_chars=100):
    if len(word) > max_chars:
        return ['[UNK]']
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else '##' + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return ['[UNK]']
        pieces.append(found)
        start = end
    return pieces


def encode(text, vocab, max_length=128):
    ids = [CLS]
    for word in pre_tokenize(normalize(text)):
        ids.extend(vocab[p] for p in wordpiece(word, vocab))
    ids = ids[:max_length - 1]
    return ids + [SEP]


def build_vocab(sentences, size):
    """Whole words by frequency, then frequent starts and ##endings of the
    words left out, then every character alone and as ##c (so every word
    splits into pieces, never [UNK])."""
    words = Counter(w for s in sentences for w in pre_tokenize(normalize(s)))
    chars = sorted({c for w in words for c in w})
    budget = size - len(SPECIALS) - 2 * len(chars)
    whole = [w for w, _ in words.most_common()][: int(budget * 0.75)]
    kept = set(whole)
    starts, ends = Counter(), Counter()
    for w, n in words.items():
        if w in kept:
            continue
        for k in range(2, min(6, len(w))):
            starts[w[:k]] += n
            ends['##' + w[-k:]] += n
    affixes = [a for a, _ in (starts + ends).most_common() if a not in kept][: budget - len(whole)]
    tokens = SPECIALS + whole + affixes + chars + ['##' + c for c in chars]
    seen, vocab = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            vocab.append(t)
    return {t: i for i, t in enumerate(vocab)}


def tokenizer_json(vocab, max_length):
    added = [{'id': vocab[t], 'content': t, 'single_word': False, 'lstrip': False, 'rstrip': False,
              'normalized': False, 'special': True} for t in SPECIALS]
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': added,
        'normalizer': {'type': 'BertNormalizer', 'clean_text': True, 'handle_chinese_chars': True,
                       'strip_accents': None, 'lowercase': True},
        'pre_tokenizer': {'type': 'BertPreTokenizer'},
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '[CLS]', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                       {'SpecialToken': {'id': '[SEP]', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '[CLS]', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                     {'SpecialToken': {'id': '[SEP]', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 1}},
                     {'SpecialToken': {'id': '[SEP]', 'type_id': 1}}],
            'special_tokens': {t: {'id': t, 'ids': [vocab[t]], 'tokens': [t]} for t in ('[CLS]', '[SEP]')},
        },
        'decoder': {'type': 'WordPiece', 'prefix': '##', 'cleanup': True},
        'model': {'type': 'WordPiece', 'unk_token': '[UNK]', 'continuing_subword_prefix': '##',
                  'max_input_chars_per_word': 100, 'vocab': vocab},
    }


# ---------------------------------------------------------------- model

class Layer(nn.Module):
    """A post-LN BERT encoder layer, written out so it exports to plain ONNX ops."""

    def __init__(self, hidden, heads, ffn, dropout):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden))
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, additive_mask):
        b, t, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + additive_mask
        context = (self.drop(scores.softmax(-1)) @ v).transpose(1, 2).reshape(b, t, h)
        x = self.norm1(x + self.drop(self.out(context)))
        return self.norm2(x + self.drop(self.ffn(x)))


class TinyBert(nn.Module):
    def __init__(self, vocab_size, hidden=32, layers=2, heads=2, ffn=64, max_positions=128, labels=2, dropout=0.1):
        super().__init__()
        self.words = nn.Embedding(vocab_size, hidden, padding_idx=PAD)
        self.positions = nn.Embedding(max_positions, hidden)
        self.segments = nn.Embedding(2, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([Layer(hidden, heads, ffn, dropout) for _ in range(layers)])
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, labels)

    def forward(self, input_ids, attention_mask, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.words(input_ids) + self.positions(positions) + self.segments(token_type_ids)
        x = self.drop(self.norm(x))
        mask = attention_mask.to(x.dtype)
        # -1e4 rather than -inf: a padded position gets weight exp(-1e4) = 0 in float32, and no NaN.
        additive = ((1.0 - mask) * -1e4)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, additive)
        pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.classifier(self.drop(torch.tanh(self.pooler(pooled))))


# ---------------------------------------------------------------- data

def read_tsv(path):
    with open(path, encoding='utf-8') as f:
        next(f)
        rows = [line.rstrip('\n').split('\t') for line in f if line.strip()]
    return [s.strip() for s, _ in rows], [int(l) for _, l in rows]


def padded(batch_ids):
    width = max(len(ids) for ids in batch_ids)
    input_ids = torch.zeros(len(batch_ids), width, dtype=torch.int64)
    mask = torch.zeros(len(batch_ids), width, dtype=torch.int64)
    for r, ids in enumerate(batch_ids):
        input_ids[r, :len(ids)] = torch.tensor(ids)
        mask[r, :len(ids)] = 1
    return input_ids, mask, torch.zeros_like(input_ids)


def bucketed(encoded, batch_size, rng):
    order = list(range(len(encoded)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: len(encoded[i]))
        batches += [part[k:k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def evaluate(model, encoded, labels):
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(encoded), 128):
            logits = model(*padded(encoded[start:start + 128]))
            correct += (logits.argmax(1) == torch.tensor(labels[start:start + 128])).sum().item()
    return correct / len(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(HERE))
    parser.add_argument('--data', default=os.path.join(root, '..', 'shared', 'data', 'sst2'))
    parser.add_argument('--out', default=os.path.join(HERE, 'tiny-bert-sst2'))
    parser.add_argument('--vocab-size', type=int, default=2000)
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--max-length', type=int, default=128)
    parser.add_argument('--train-max-length', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    train_x, train_y = read_tsv(os.path.join(args.data, 'train.tsv'))
    dev_x, dev_y = read_tsv(os.path.join(args.data, 'dev.tsv'))
    vocab = build_vocab(train_x, args.vocab_size)
    train_ids = [encode(s, vocab, args.train_max_length) for s in train_x]
    dev_ids = [encode(s, vocab, args.max_length) for s in dev_x]
    unk = sum(ids.count(UNK) for ids in train_ids)
    print(f'vocabulary {len(vocab)} pieces; training rows {len(train_ids)}, mean {np.mean([len(i) for i in train_ids]):.1f} '
          f'pieces; dev longest {max(len(i) for i in dev_ids)}; [UNK] in training {unk}')

    model = TinyBert(len(vocab), max_positions=args.max_length)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(train_ids) / args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        total, seen = 0.0, 0
        for batch in bucketed(train_ids, args.batch_size, rng):
            logits = model(*padded([train_ids[i] for i in batch]))
            loss = nn.functional.cross_entropy(logits, torch.tensor([train_y[i] for i in batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        accuracy = evaluate(model, dev_ids, dev_y)
        print(f'epoch {epoch + 1}/{args.epochs}: loss {total / seen:.4f}, dev accuracy {accuracy:.4f}, {time.time() - started:.0f} s')
    train_seconds = time.time() - started
    model.eval()
    accuracy = evaluate(model, dev_ids, dev_y)
    parameters = sum(p.numel() for p in model.parameters())

    out = args.out
    os.makedirs(os.path.join(out, 'onnx'), exist_ok=True)
    path = os.path.join(out, 'onnx', 'model.onnx')
    names = ['input_ids', 'attention_mask', 'token_type_ids']
    torch.onnx.export(
        model, padded(dev_ids[:2]), path, input_names=names, output_names=['logits'],
        dynamic_axes={**{n: {0: 'batch', 1: 'sequence'} for n in names}, 'logits': {0: 'batch'}},
        opset_version=14, do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(path))
    config = {
        'architectures': ['BertForSequenceClassification'],
        'model_type': 'bert',
        'vocab_size': len(vocab),
        'hidden_size': 32,
        'num_hidden_layers': 2,
        'num_attention_heads': 2,
        'intermediate_size': 64,
        'hidden_act': 'gelu',
        'max_position_embeddings': args.max_length,
        'type_vocab_size': 2,
        'layer_norm_eps': 1e-12,
        'pad_token_id': PAD,
        'id2label': {'0': 'negative', '1': 'positive'},
        'label2id': {'negative': 0, 'positive': 1},
        'problem_type': 'single_label_classification',
        'kd_ts_note': 'a tiny BERT-shaped model trained from scratch on SST-2 by examples/onnx-teacher/train_tiny_bert.py (mean pooling over tokens)',
    }
    tokenizer_config = {
        'tokenizer_class': 'BertTokenizer', 'do_lower_case': True, 'model_max_length': args.max_length,
        'pad_token': '[PAD]', 'unk_token': '[UNK]', 'cls_token': '[CLS]', 'sep_token': '[SEP]', 'mask_token': '[MASK]',
        'clean_up_tokenization_spaces': True,
    }
    for name, value in [('config.json', config), ('tokenizer.json', tokenizer_json(vocab, args.max_length)),
                        ('tokenizer_config.json', tokenizer_config)]:
        with open(os.path.join(out, name), 'w', encoding='utf-8') as f:
            json.dump(value, f, ensure_ascii=False, indent=None if name == 'tokenizer.json' else 2)
            f.write('\n')

    # Fixture: the first 24 dev sentences, every dev sentence with a non-ASCII
    # character, and a few made-up ones; ids from this script's tokenizer,
    # logits from the model in float64.
    picked = list(range(24)) + [i for i, s in enumerate(dev_x) if any(ord(c) > 127 for c in s)][:8]
    sentences = [dev_x[i] for i in picked] + [
        'Hello, WORLD!! Ça va?', 'an un-watchable, overlong mess', 'a  tab\tseparated   gem', 'wow',
    ]
    reference = TinyBert(len(vocab), max_positions=args.max_length).double()
    reference.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    reference.eval()
    encoded = [encode(s, vocab, args.max_length) for s in sentences]
    with torch.no_grad():
        logits = torch.cat([reference(*padded([ids])) for ids in encoded])
    fixture = {
        'note': 'dev sentences (and a few made up), token ids from train_tiny_bert.py\'s tokenizer, PyTorch float64 logits (each sentence alone)',
        'sentences': sentences,
        'inputIds': encoded,
        'logits': logits.tolist(),
        'devAccuracy': accuracy,
        'parameters': parameters,
        'trainSeconds': round(train_seconds, 1),
        'settings': {k: v for k, v in vars(args).items() if k not in ('data', 'out')},
        'torch': torch.__version__,
    }
    with open(os.path.join(out, 'fixture.json'), 'w', encoding='utf-8') as f:
        json.dump(fixture, f, ensure_ascii=False)
        f.write('\n')
    print(f'dev accuracy {accuracy:.4f}; {parameters} parameters; model.onnx {os.path.getsize(path)} bytes; '
          f'{train_seconds:.0f} s training; wrote {out}')


if __name__ == '__main__':
    main()
