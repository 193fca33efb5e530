#include <string.h>

#include "mml/alloc.h"
#include "mml/metrics.h"

mml_status mml_confusion_init(mml_confusion *cm, int n_classes)
{
    cm->n_classes = n_classes;
    cm->total = 0;
    cm->counts = mml_calloc((size_t)n_classes * (size_t)n_classes, sizeof(int64_t));
    return cm->counts ? MML_OK : MML_ERR_NOMEM;
}

void mml_confusion_free(mml_confusion *cm)
{
    mml_free(cm->counts);
    cm->counts = NULL;
}

void mml_confusion_add(mml_confusion *cm, int truth, int predicted)
{
    if (truth < 0 || truth >= cm->n_classes || predicted < 0 || predicted >= cm->n_classes) return;
    cm->counts[truth * cm->n_classes + predicted]++;
    cm->total++;
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

mml_metrics mml_metrics_compute(const mml_confusion *cm, mml_class_metrics *per_class)
{
    mml_metrics m = { 0 };
    int C = cm->n_classes;
    int64_t correct = 0;
    double sum_p = 0, sum_r = 0, sum_f = 0, weighted = 0;
    for (int c = 0; c < C; c++) {
        int64_t tp = cm->counts[c * C + c], pred = 0, actual = 0;
        for (int k = 0; k < C; k++) {
            pred += cm->counts[k * C + c];
            actual += cm->counts[c * C + k];
        }
        correct += tp;
        double p = safe_div((double)tp, (double)pred), r = safe_div((double)tp, (double)actual);
        double f = safe_div(2 * p * r, p + r);
        if (per_class) per_class[c] = (mml_class_metrics){ p, r, f, actual };
        sum_p += p;
        sum_r += r;
        sum_f += f;
        weighted += f * (double)actual;
    }
    m.accuracy = safe_div((double)correct, (double)cm->total);
    m.macro_precision = safe_div(sum_p, C);
    m.macro_recall = safe_div(sum_r, C);
    m.macro_f1 = safe_div(sum_f, C);
    m.micro_precision = m.micro_recall = m.micro_f1 = m.accuracy;
    m.weighted_f1 = safe_div(weighted, (double)cm->total);
    return m;
}

double mml_topk_accuracy(const float *scores, const int32_t *truth, int64_t n, int n_classes, int k)
{
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = scores + i * n_classes;
        float own = row[truth[i]];
        int higher = 0;
        for (int c = 0; c < n_classes; c++) higher += row[c] > own || (row[c] == own && c < truth[i]);
        hits += higher < k;
    }
    return safe_div((double)hits, (double)n);
}
