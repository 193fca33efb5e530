/* mml/metrics.h: classification metrics from a confusion matrix, with
 * scikit-learn's conventions (zero_division = 0), and retrieval metrics. */
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

#endif
