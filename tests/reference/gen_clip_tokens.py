"""Reference token ids for CLIP's byte-level BPE, from an implementation of
OpenAI's SimpleTokenizer written here in Python (regex for \\p{L}/\\p{N}),
without ftfy and HTML unescaping, as mml documents. The C tokenizer must give
the same ids. Run: /usr/bin/python3 tests/reference/gen_clip_tokens.py"""
import gzip
import os

import regex as re
import torch

import fixtures

DATASETS = os.environ.get("MML_DATASETS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                                       "shared", "datasets"))
MERGES = os.path.join(DATASETS, "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


byte_enc = bytes_to_unicode()
merges = [tuple(m.split()) for m in gzip.open(MERGES).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]]
vocab = list(byte_enc.values())
vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
encoder = {v: i for i, v in enumerate(vocab)}
ranks = {m: i for i, m in enumerate(merges)}
pat = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
                 re.IGNORECASE)


def bpe(token):
    word = list(token[:-1]) + [token[-1] + "</w>"]
    while len(word) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
        best = min(pairs)[0]
        if best == 1 << 30:
            break
        first, second = merges[best]
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                out.append(first + second)
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = out
    return word


def encode(text, context=77):
    text = re.sub(r"\s+", " ", text.strip()).strip().lower()
    ids = [49406]
    for tok in re.findall(pat, text):
        if tok in ("<|startoftext|>", "<|endoftext|>"):
            ids.append(encoder[tok])
            continue
        ids += [encoder[t] for t in bpe("".join(byte_enc[b] for b in tok.encode("utf-8")))]
    ids.append(49407)
    if len(ids) > context:
        ids = ids[:context]
        ids[-1] = 49407
    return ids + [0] * (context - len(ids))


TEXTS = [
    "a photo of a cat", "A Photo Of A CAT.", "  spaces   and\ttabs\nnewlines  ", "don't stop, it's what we'll do",
    "I'm sure they've said 'hello' and they'd LEAVE", "numbers 12345 and 3.14159 and 1,000,000",
    "e-mail: someone@example.com!!!", "naïve café résumé façade", "Straße und Größe", "日本語のテキスト", "中文分词测试",
    "emoji 😀🎉 test 👍🏽", "mixed123abc456", "hyphen-ated words--and dashes", "<|startoftext|> special <|endoftext|>",
    "a" * 60, "supercalifragilisticexpialidocious antidisestablishmentarianism", "ünïcödé wörds everywhere",
    "tabs\tand\rcarriage returns", "!?.,;:()[]{}<>/\\|`~@#$%^&*_+=-", "the quick brown fox jumps over the lazy dog",
    "A dog running on the beach at sunset", "a t-shirt, a trouser and an ankle boot", "Ωmega αlpha βeta",
    "ﬁnancial ﬂow (ligatures)", "x" * 10 + " " + "y" * 100, "Ñandú 2024", "o'clock rock'n'roll", "'s 't 're",
    "مرحبا بالعالم", "Привет, мир!", "γειά σου κόσμε", "one two three four five six seven eight nine ten " * 12,
]
ids = torch.tensor([encode(t) for t in TEXTS], dtype=torch.int32)
fixtures.save("clip_tokens", {"ids": ids}, texts="\x1f".join(TEXTS))
print(f"wrote {len(TEXTS)} tokenizations")
