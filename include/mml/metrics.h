/* mml/metrics.h: classification metrics from a confusion matrix, with
 * scikit-learn's conventions (zero_division = 0), retrieval metrics and
 * corpus BLEU for generated text. */
#ifndef MML_METRICS_H
#define MML_METRICS_H

#include <stdint.h>

#include "mml/error.h"

typedef struct mml_confusion {
    int n_classes;
    int64_t *counts; /* [true][predicted], n_classes^2 */
    int64_t total;
} mml_confusion;

mml_status mml_confusion_init(mml_confusion *cm, int n_classes);
void mml_confusion_free(mml_confusion *cm);
void mml_confusion_add(mml_confusion *cm, int truth, int predicted);

typedef struct mml_class_metrics {
    double precision, recall, f1;
    int64_t support;
} mml_class_metrics;

typedef struct mml_metrics {
    double accuracy;
    double macro_precision, macro_recall, macro_f1;
    double micro_precision, micro_recall, micro_f1; /* equal to accuracy for single-label */
    double weighted_f1;
} mml_metrics;

/* per_class may be NULL; else it receives n_classes entries. */
mml_metrics mml_metrics_compute(const mml_confusion *cm, mml_class_metrics *per_class);

/* Fraction of rows whose true class is among the k highest scores. */
double mml_topk_accuracy(const float *scores, const int32_t *truth, int64_t n, int n_classes, int k);

typedef struct mml_retrieval_metrics {
    double recall[3];              /* Recall@1, @5, @10: fraction of queries with a relevant item among the top k */
    double median_rank, mean_rank; /* 1-based rank of the first relevant item */
    double map;                    /* mean over queries of average precision over all relevant items */
    int64_t n_queries;             /* queries that have at least one relevant item (others are skipped) */
} mml_retrieval_metrics;

/* scores: [nq, ng] row-major similarities (higher = closer). Gallery item j is
 * relevant to query i when q_key[i] == g_key[j]: pass the pair's index as the
 * key for instance-level retrieval, the label for category level. The ranking
 * is by descending score, ties broken by gallery index (a stable sort), so
 * results are deterministic. Work is spread over the thread pool
 * (mml/threads.h) by query rows. Errors (MML_ERR_ARG) when nq or ng < 1, ng
 * >= 2^31, a score is NaN or no query has a relevant item. */
mml_status mml_retrieval_evaluate(const float *scores, int64_t nq, int64_t ng, const int32_t *q_key,
                                  const int32_t *g_key, mml_retrieval_metrics *out);

/* Corpus-level BLEU-1..4 (Papineni et al., 2002) as nltk's corpus_bleu computes it
 * (tests/reference/bleu.py), uniform weights and no smoothing: BLEU-n is
 * bp * exp(sum over k <= n of log(p_k) / n), 0 when some p_k with k <= n is 0.
 * p_k sums over the corpus the hypotheses' k-gram counts clipped to the largest
 * count in any one of their references, over the sum of max(1, number of
 * k-grams in the hypothesis) (nltk's floor, which counts a hypothesis shorter
 * than k as one unmatched k-gram). The brevity penalty bp is exp(1 - r/c) when
 * c <= r (0 when c = 0), else 1, for the total hypothesis length c and r the
 * sum over hypotheses of the reference length closest to theirs (ties: the
 * shorter). */
typedef struct mml_bleu {
    double bleu[4];      /* BLEU-1..4 */
    double precision[4]; /* p_1..p_4 */
    double brevity_penalty;
    int64_t hyp_len, ref_len; /* c and r */
} mml_bleu;

/* Hypothesis i is hyps[i][0, hyp_len[i]); its references are refs[j] (with
 * ref_len[j] tokens) for j in [ref_start[i], ref_start[i + 1]), so ref_start
 * has n + 1 entries. Tokens are compared as ids. Counting is quadratic in a
 * sentence's length, allocation-free. Errors (MML_ERR_ARG) when n < 1, a
 * hypothesis has no reference or a length is negative. */
mml_status mml_bleu_corpus(const int32_t *const *hyps, const int *hyp_len, int64_t n, const int32_t *const *refs,
                           const int *ref_len, const int64_t *ref_start, mml_bleu *out);

#endif
