"""Corpus BLEU as nltk 3.8's corpus_bleu computes it (nltk is not installed
here), printing the numbers tests/tasks/test_bleu.c hard-codes.
Run: /usr/bin/python3 tests/reference/bleu.py"""
import math
from collections import Counter
from fractions import Fraction


def ngrams(seq, n):
    return Counter(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))


def modified_precision(refs, hyp, n):
    counts = ngrams(hyp, n)
    max_ref = Counter()
    for r in refs:
        for g, c in ngrams(r, n).items():
            max_ref[g] = max(max_ref[g], c)
    clipped = sum(min(c, max_ref[g]) for g, c in counts.items())
    return clipped, max(1, sum(counts.values()))  # nltk's denominator is at least 1


def corpus_bleu(list_of_refs, hyps, max_n=4):
    num, den = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for refs, hyp in zip(list_of_refs, hyps):
        for n in range(1, max_n + 1):
            a, b = modified_precision(refs, hyp, n)
            num[n - 1] += a
            den[n - 1] += b
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in refs), key=lambda r: (abs(r - len(hyp)), r))
    bp = 1.0 if hyp_len > ref_len else 0.0 if hyp_len == 0 else math.exp(1 - ref_len / hyp_len)
    p = [Fraction(a, b) for a, b in zip(num, den)]
    bleu = []
    for n in range(1, max_n + 1):
        if any(x == 0 for x in p[:n]):
            bleu.append(0.0)  # nltk (method0) warns and returns ~0 (exactly 0 before 3.5)
        else:
            bleu.append(bp * math.exp(math.fsum(math.log(x) / n for x in p[:n])))
    return bleu, p, bp, hyp_len, ref_len


def words(s):
    return s.split()


H1 = words("It is a guide to action which ensures that the military always obeys the commands of the party")
R1 = [words("It is a guide to action that ensures that the military will forever heed Party commands"),
      words("It is the guiding principle which guarantees the military forces always being under the command of the Party"),
      words("It is the practical guide for the army always to heed the directions of the party")]
H2 = words("he read the book because he was interested in world history")
R2 = [words("he was interested in world history because he read the book")]

if __name__ == "__main__":
    for name, refs, hyps in [("papineni_sentence", [R1], [H1]), ("nltk_corpus", [R1, R2], [H1, H2])]:
        bleu, p, bp, c, r = corpus_bleu(refs, hyps)
        print(name, ["%r" % b for b in bleu], [str(x) for x in p], "bp %r" % bp, "c", c, "r", r)
