"""Reference word vocabularies and BPE merges for mml's text front-end, in plain
Python (collections.Counter, and a straightforward O(n^2) BPE trainer that
recounts every pair after each merge). Writes the corpus it uses to
tests/fixtures/text/corpus.txt and the expectations to text_ref.safetensors.
Run: /usr/bin/python3 tests/reference/gen_text.py"""
import collections
import os
import random

import numpy as np
import regex as re

import fixtures

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "fixtures", "text", "corpus.txt")

STOPWORDS = set("""a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves""".split())

NOUNS = ["cat", "dog", "bird", "river", "forest", "city", "photo", "garden", "window", "kitchen", "newest", "widest",
         "lower", "runner", "café", "naïve", "Straße", "hill", "road", "tree"]
VERBS = ["runs", "running", "sits", "jumped", "looks", "flies", "sleeps", "walked", "reads", "swims"]
ADJ = ["red", "quick", "lazy", "old", "small", "bright", "quiet", "tall", "wet", "green"]


def make_corpus():
    rng = random.Random(4)
    lines = []
    for _ in range(240):
        words = []
        for _ in range(rng.randint(4, 12)):
            kind = rng.random()
            pool = NOUNS if kind < 0.4 else VERBS if kind < 0.6 else ADJ if kind < 0.8 else sorted(STOPWORDS)
            w = pool[min(int(rng.expovariate(0.35)), len(pool) - 1)]
            words.append(w.capitalize() if rng.random() < 0.1 else w)
        tail = rng.choice([".", "!", "?", ",", " 42.", " x2", " -- ok", "'s"])
        lines.append(" ".join(words) + tail)
    return "\n".join(lines) + "\n"


# mml_text_words on this corpus: letters, digits and marks join; everything else splits; case folded.
WORD = re.compile(r"[\p{L}\p{N}\p{M}]+")


def vocab(text, min_freq, max_size, stop):
    counts = collections.Counter()
    for line in text.splitlines():
        counts.update(w for w in (m.casefold() for m in WORD.findall(line)) if not (stop and w in STOPWORDS))
    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w.encode()))
    if max_size:
        words = words[:max_size - len(specials)]
    return specials + words, [0] * len(specials) + [counts[w] for w in words]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE = bytes_to_unicode()
PRETOKEN = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")


def pretokens(text):
    for line in text.splitlines():
        for t in PRETOKEN.findall(re.sub(r"\s+", " ", line.strip()).lower()):
            if t not in ("<|startoftext|>", "<|endoftext|>"):
                yield t


def symbols(word):
    s = [BYTE[b] for b in word.encode()]
    return tuple(s[:-1] + [s[-1] + "</w>"])


def merge_word(word, a, b):
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(text, n_merges):
    words = collections.Counter(symbols(t) for t in pretokens(text))
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        # most frequent; ties: first symbol, then second, by bytes (= code points)
        a, b = min(pairs, key=lambda p: (-pairs[p], p[0], p[1]))
        merges.append((a, b))
        words = collections.Counter({merge_word(w, a, b): c for w, c in words.items()})
    return merges


def encode_bpe(merges, word):
    ranks = {m: i for i, m in enumerate(merges)}
    vocab = list(BYTE.values())
    vocab += [v + "</w>" for v in vocab] + [a + b for a, b in merges]
    ids = {v: i for i, v in enumerate(vocab)}
    w = symbols(word)
    while len(w) > 1:
        best = min(zip(w, w[1:]), key=lambda p: ranks.get(p, 1 << 30))
        if best not in ranks:
            break
        w = merge_word(w, *best)
    return [ids[s] for s in w]


def main():
    text = make_corpus()
    os.makedirs(os.path.dirname(CORPUS), exist_ok=True)
    with open(CORPUS, "w", encoding="utf-8") as f:
        f.write(text)
    tensors, meta = {}, {}
    for name, (min_freq, max_size, stop) in {"plain": (1, 0, False), "cut": (3, 40, True)}.items():
        toks, counts = vocab(text, min_freq, max_size, stop)
        meta["vocab_" + name] = "\x1f".join(toks)
        tensors["counts_" + name] = np.array(counts, dtype=np.int64)
    merges = train_bpe(text, 300)
    meta["merges"] = "\n".join(a + " " + b for a, b in merges)
    words = ["running", "kitchen", "straße", "unseen", "newest", "sleeps"]
    meta["bpe_words"] = "\x1f".join(words)
    for i, w in enumerate(words):
        tensors["bpe_ids_%d" % i] = np.array(encode_bpe(merges, w), dtype=np.int64)
    fixtures.save("text_ref", tensors, **meta)


if __name__ == "__main__":
    main()
