#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/metrics.h"
#include "mml/threads.h"

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

/* ---- retrieval ----
 * Each query row is ranked by a stable LSD radix sort of (score key << 32 |
 * gallery index): linear in ng, and stability from the index order gives the
 * tie rule. */

enum { RADIX_BITS = 11, RADIX = 1 << RADIX_BITS, RADIX_PASSES = 3 }; /* 3 x 11 bits cover the 32-bit key */

typedef struct query_stats {
    int64_t first_rank; /* 0: no relevant item; -1: a NaN score */
    double ap;
} query_stats;

typedef struct retrieval_job {
    const float *scores;
    const int32_t *q_key, *g_key;
    int64_t ng;
    uint64_t *scratch; /* 2 * ng slots per thread */
    query_stats *out;
} retrieval_job;

/* A key whose ascending order is the scores' descending order. */
static uint32_t descending_key(float s)
{
    if (s == 0.0f) s = 0.0f; /* -0 == +0, so they must tie */
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    u = (u & 0x80000000u) ? ~u : u | 0x80000000u; /* now ascending in s */
    return ~u;
}

static unsigned digit(uint64_t v, int pass) { return (unsigned)(v >> (32 + pass * RADIX_BITS)) & (RADIX - 1); }

/* Sorts v[0, n) stably by the high 32 bits, given the digit histograms of
 * every pass; tmp holds n. Returns the buffer that ends up sorted. */
static uint64_t *radix_sort(uint64_t *v, uint64_t *tmp, int64_t n, int32_t (*hist)[RADIX])
{
    for (int pass = 0; pass < RADIX_PASSES; pass++) {
        int32_t *h = hist[pass];
        if (h[digit(v[0], pass)] == n) continue; /* one bucket: already in order */
        int32_t next = 0;
        for (int d = 0; d < RADIX; d++) {
            int32_t c = h[d];
            h[d] = next;
            next += c;
        }
        for (int64_t i = 0; i < n; i++) tmp[h[digit(v[i], pass)]++] = v[i];
        uint64_t *t = v;
        v = tmp;
        tmp = t;
    }
    return v;
}

static query_stats rank_query(const retrieval_job *j, int64_t q, uint64_t *buf)
{
    const float *row = j->scores + q * j->ng;
    int32_t key = j->q_key[q];
    int64_t n_rel = 0;
    int32_t hist[RADIX_PASSES][RADIX] = { { 0 } }; /* counts <= ng < 2^31 */
    for (int64_t g = 0; g < j->ng; g++) {
        if (isnan(row[g])) return (query_stats){ -1, 0.0 };
        n_rel += j->g_key[g] == key;
        buf[g] = (uint64_t)descending_key(row[g]) << 32 | (uint64_t)g;
        for (int pass = 0; pass < RADIX_PASSES; pass++) hist[pass][digit(buf[g], pass)]++;
    }
    if (!n_rel) return (query_stats){ 0, 0.0 };
    const uint64_t *order = radix_sort(buf, buf + j->ng, j->ng, hist);
    query_stats st = { 0, 0.0 };
    for (int64_t r = 0, hits = 0; hits < n_rel; r++) {
        if (j->g_key[order[r] & 0xffffffffu] != key) continue;
        if (++hits == 1) st.first_rank = r + 1;
        st.ap += (double)hits / (double)(r + 1); /* precision at this relevant item */
    }
    st.ap /= (double)n_rel;
    return st;
}

static void retrieval_range(void *arg, int64_t b, int64_t e, int thread)
{
    const retrieval_job *j = arg;
    uint64_t *buf = j->scratch + (size_t)thread * 2 * (size_t)j->ng;
    for (int64_t q = b; q < e; q++) j->out[q] = rank_query(j, q, buf);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Averages over the queries that have a relevant item, in query order (so
 * the sums do not depend on the thread count). */
static mml_status summarise(const query_stats *per, int64_t nq, mml_retrieval_metrics *out)
{
    static const int64_t ks[3] = { 1, 5, 10 };
    int64_t *ranks = mml_malloc((size_t)nq * sizeof *ranks);
    if (!ranks) return MML_ERR_NOMEM;
    mml_retrieval_metrics m = { { 0 } };
    double rank_sum = 0.0;
    mml_status st = MML_OK;
    for (int64_t q = 0; q < nq && st == MML_OK; q++) {
        int64_t first = per[q].first_rank;
        if (first < 0) st = mml_error(MML_ERR_ARG, "retrieval: query %lld has a NaN score", (long long)q);
        if (first <= 0) continue;
        ranks[m.n_queries++] = first;
        for (int k = 0; k < 3; k++) m.recall[k] += first <= ks[k];
        rank_sum += (double)first;
        m.map += per[q].ap;
    }
    if (st == MML_OK && !m.n_queries) st = mml_error(MML_ERR_ARG, "retrieval: no query has a relevant gallery item");
    if (st == MML_OK) {
        int64_t n = m.n_queries;
        qsort(ranks, (size_t)n, sizeof *ranks, cmp_i64);
        for (int k = 0; k < 3; k++) m.recall[k] /= (double)n;
        m.median_rank = (double)(ranks[(n - 1) / 2] + ranks[n / 2]) / 2.0;
        m.mean_rank = rank_sum / (double)n;
        m.map /= (double)n;
        *out = m;
    }
    mml_free(ranks);
    return st;
}

mml_status mml_retrieval_evaluate(const float *scores, int64_t nq, int64_t ng, const int32_t *q_key,
                                  const int32_t *g_key, mml_retrieval_metrics *out)
{
    assert(scores && q_key && g_key && out);
    if (nq < 1 || ng < 1 || ng > INT32_MAX)
        return mml_error(MML_ERR_ARG, "retrieval: %lld queries x %lld gallery items (need 1+ queries, 1 to 2^31-1 items)",
                         (long long)nq, (long long)ng);
    /* mml_parallel_for hands out at most this many ranges, numbered from 0 */
    int64_t threads = mml_threads_get() < nq ? mml_threads_get() : nq;
    query_stats *per = mml_malloc((size_t)nq * sizeof *per);
    uint64_t *scratch = mml_malloc((size_t)threads * 2 * (size_t)ng * sizeof *scratch);
    mml_status st = MML_ERR_NOMEM;
    if (per && scratch) {
        retrieval_job j = { scores, q_key, g_key, ng, scratch, per };
        mml_parallel_for(nq, 1 + 65536 / ng, retrieval_range, &j);
        st = summarise(per, nq, out);
    }
    mml_free(per);
    mml_free(scratch);
    return st;
}

/* ---- BLEU ----
 * n-grams are counted by scanning the sentences (captions are short), each
 * distinct one once, at its first occurrence in the hypothesis. */

enum { BLEU_MAX_N = 4 };

/* Occurrences of the n-gram g in seq[0, len). */
static int64_t count_ngram(const int32_t *seq, int len, const int32_t *g, int n)
{
    int64_t c = 0;
    for (int i = 0; i + n <= len; i++) c += memcmp(seq + i, g, (size_t)n * sizeof *g) == 0;
    return c;
}

/* Adds one hypothesis's clipped matches and n-gram counts (at least 1) per order. */
static void bleu_add_sentence(const int32_t *hyp, int len, const int32_t *const *refs, const int *ref_len,
                              int64_t n_refs, int64_t *match, int64_t *total)
{
    for (int n = 1; n <= BLEU_MAX_N; n++) {
        for (int i = 0; i + n <= len; i++) {
            const int32_t *g = hyp + i;
            if (count_ngram(hyp, i + n - 1, g, n)) continue; /* seen before i */
            int64_t own = count_ngram(g, len - i, g, n), in_ref = 0; /* the most in any one reference */
            for (int64_t r = 0; r < n_refs && in_ref < own; r++) {
                int64_t c = count_ngram(refs[r], ref_len[r], g, n);
                if (c > in_ref) in_ref = c;
            }
            match[n - 1] += in_ref < own ? in_ref : own;
        }
        total[n - 1] += len - n + 1 > 1 ? len - n + 1 : 1;
    }
}

static int closest_ref_len(int hyp_len, const int *ref_len, int64_t n_refs)
{
    int best = ref_len[0];
    for (int64_t r = 1; r < n_refs; r++) {
        int d = abs(ref_len[r] - hyp_len), best_d = abs(best - hyp_len);
        if (d < best_d || (d == best_d && ref_len[r] < best)) best = ref_len[r];
    }
    return best;
}

static mml_status bleu_check_sentence(int64_t i, int hyp_len, const int *ref_len, int64_t r0, int64_t n_refs)
{
    if (n_refs < 1) return mml_error(MML_ERR_ARG, "bleu: hypothesis %lld has no reference", (long long)i);
    if (hyp_len < 0) return mml_error(MML_ERR_ARG, "bleu: hypothesis %lld has length %d", (long long)i, hyp_len);
    for (int64_t r = r0; r < r0 + n_refs; r++)
        if (ref_len[r] < 0)
            return mml_error(MML_ERR_ARG, "bleu: reference %lld (of hypothesis %lld) has length %d", (long long)r,
                             (long long)i, ref_len[r]);
    return MML_OK;
}

mml_status mml_bleu_corpus(const int32_t *const *hyps, const int *hyp_len, int64_t n, const int32_t *const *refs,
                           const int *ref_len, const int64_t *ref_start, mml_bleu *out)
{
    assert(hyps && hyp_len && refs && ref_len && ref_start && out);
    if (n < 1) return mml_error(MML_ERR_ARG, "bleu: %lld hypotheses (need 1+)", (long long)n);
    mml_bleu b = { { 0 } };
    int64_t match[BLEU_MAX_N] = { 0 }, total[BLEU_MAX_N] = { 0 };
    for (int64_t i = 0; i < n; i++) {
        int64_t r0 = ref_start[i], n_refs = ref_start[i + 1] - r0;
        mml_status st = bleu_check_sentence(i, hyp_len[i], ref_len, r0, n_refs);
        if (st != MML_OK) return st;
        bleu_add_sentence(hyps[i], hyp_len[i], refs + r0, ref_len + r0, n_refs, match, total);
        b.hyp_len += hyp_len[i];
        b.ref_len += closest_ref_len(hyp_len[i], ref_len + r0, n_refs);
    }
    b.brevity_penalty = b.hyp_len > b.ref_len ? 1.0
                        : b.hyp_len == 0      ? 0.0
                                              : exp(1.0 - (double)b.ref_len / (double)b.hyp_len);
    double log_sum = 0.0;
    bool zero = false;
    for (int k = 0; k < BLEU_MAX_N; k++) {
        b.precision[k] = (double)match[k] / (double)total[k];
        zero = zero || match[k] == 0;
        log_sum += zero ? 0.0 : log(b.precision[k]);
        b.bleu[k] = zero ? 0.0 : b.brevity_penalty * exp(log_sum / (k + 1));
    }
    *out = b;
    return MML_OK;
}
