/* mml/metrics.h: classification metrics from a confusion matrix, with
 * scikit-learn's conventions (zero_division = 0). */
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

#endif
