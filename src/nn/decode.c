/* Beam search over a step function. Live hypotheses are rows of bos plus
 * the tokens so far; each step keeps the 2 * beam best continuations (at most
 * `beam` of them, one per live hypothesis, end in eos, so the best `beam`
 * others are among them) and copies the surviving prefixes into a second set
 * of rows. Only the best finished hypothesis is kept. */
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/decode.h"

typedef struct beam_search {
    const mml_decode_options *o;
    int vocab, row_len; /* row_len = max_len + 1 */
    int n_live;
    int32_t *rows, *next_rows;    /* [beam, row_len] */
    double *logp, *next_logp;     /* [beam] totals of the live hypotheses */
    const int32_t **seqs;         /* [beam] the live rows, for the step function */
    float *step_logp;             /* [beam, vocab] */
    double *cand_logp;            /* [2 * beam] best continuations, best first */
    int64_t *cand_idx;            /* hypothesis * vocab + token */
    int n_finished, best_len;
    double best_score;
    int32_t *best;                /* [max_len] */
} beam_search;

static void beam_free(beam_search *s)
{
    mml_free(s->rows);
    mml_free(s->next_rows);
    mml_free(s->logp);
    mml_free(s->next_logp);
    mml_free(s->seqs);
    mml_free(s->step_logp);
    mml_free(s->cand_logp);
    mml_free(s->cand_idx);
    mml_free(s->best);
}

static mml_status beam_init(beam_search *s, int vocab, const mml_decode_options *o)
{
    size_t beam = (size_t)o->beam, rows = beam * ((size_t)o->max_len + 1);
    *s = (beam_search){ .o = o, .vocab = vocab, .row_len = o->max_len + 1, .n_live = 1 };
    s->rows = mml_malloc(rows * sizeof *s->rows);
    s->next_rows = mml_malloc(rows * sizeof *s->next_rows);
    s->logp = mml_calloc(beam, sizeof *s->logp);
    s->next_logp = mml_malloc(beam * sizeof *s->next_logp);
    s->seqs = mml_malloc(beam * sizeof *s->seqs);
    s->step_logp = mml_malloc(beam * (size_t)vocab * sizeof *s->step_logp);
    s->cand_logp = mml_malloc(2 * beam * sizeof *s->cand_logp);
    s->cand_idx = mml_malloc(2 * beam * sizeof *s->cand_idx);
    s->best = mml_malloc((size_t)o->max_len * sizeof *s->best);
    if (!s->rows || !s->next_rows || !s->logp || !s->next_logp || !s->seqs || !s->step_logp || !s->cand_logp ||
        !s->cand_idx || !s->best) {
        beam_free(s);
        return MML_ERR_NOMEM;
    }
    s->rows[0] = o->bos;
    return MML_OK;
}

/* Ranks the continuations into cand_*, keeping the first of equal totals;
 * returns how many were kept, or -1 for a NaN. */
static int rank_candidates(beam_search *s)
{
    int k = 2 * s->o->beam, m = 0;
    for (int i = 0; i < s->n_live; i++) {
        for (int t = 0; t < s->vocab; t++) {
            double v = s->logp[i] + s->step_logp[(size_t)i * (size_t)s->vocab + (size_t)t];
            if (isnan(v)) {
                mml_error(MML_ERR_ARG, "decode: NaN log-probability for token %d of hypothesis %d", t, i);
                return -1;
            }
            if (m == k && !(v > s->cand_logp[m - 1])) continue;
            int pos = m < k ? m++ : m - 1;
            for (; pos > 0 && s->cand_logp[pos - 1] < v; pos--) {
                s->cand_logp[pos] = s->cand_logp[pos - 1];
                s->cand_idx[pos] = s->cand_idx[pos - 1];
            }
            s->cand_logp[pos] = v;
            s->cand_idx[pos] = (int64_t)i * s->vocab + t;
        }
    }
    return m;
}

/* Hypothesis prefix (bos + len - 1 tokens) followed by tok has finished. */
static void finish(beam_search *s, const int32_t *prefix, int len, int32_t tok, double logp)
{
    double score = logp / pow(len, s->o->length_penalty);
    bool first = s->n_finished++ == 0;
    if (!first && !(score > s->best_score)) return;
    s->best_score = score;
    s->best_len = tok == s->o->eos ? len - 1 : len;
    memcpy(s->best, prefix + 1, (size_t)(len - 1) * sizeof *s->best);
    s->best[len - 1] = tok; /* past best_len for eos; best has max_len >= len slots */
}

/* Moves the m ranked continuations of hypotheses of `len - 1` generated tokens
 * to the finished set or the next live rows. */
static void advance(beam_search *s, int m, int len)
{
    const mml_decode_options *o = s->o;
    int n_next = 0;
    for (int r = 0; r < m && n_next < o->beam; r++) {
        int parent = (int)(s->cand_idx[r] / s->vocab);
        int32_t tok = (int32_t)(s->cand_idx[r] % s->vocab);
        const int32_t *prefix = s->rows + (size_t)parent * (size_t)s->row_len;
        if (tok == o->eos || len == o->max_len) {
            if (r < o->beam) finish(s, prefix, len, tok, s->cand_logp[r]);
            continue;
        }
        int32_t *row = s->next_rows + (size_t)n_next * (size_t)s->row_len;
        memcpy(row, prefix, (size_t)len * sizeof *row);
        row[len] = tok;
        s->next_logp[n_next++] = s->cand_logp[r];
    }
    int32_t *rows = s->rows;
    s->rows = s->next_rows;
    s->next_rows = rows;
    double *logp = s->logp;
    s->logp = s->next_logp;
    s->next_logp = logp;
    s->n_live = n_next;
}

static mml_status check_options(int vocab, const mml_decode_options *o, int cap)
{
    if (vocab < 1) return mml_error(MML_ERR_ARG, "decode: vocab %d (need 1+)", vocab);
    if (o->beam < 1) return mml_error(MML_ERR_ARG, "decode: beam %d (need 1+)", o->beam);
    if (o->max_len < 1) return mml_error(MML_ERR_ARG, "decode: max_len %d (need 1+)", o->max_len);
    if (o->bos < 0 || o->bos >= vocab)
        return mml_error(MML_ERR_ARG, "decode: bos %d outside the vocabulary [0, %d)", (int)o->bos, vocab);
    if (o->eos < 0 || o->eos >= vocab)
        return mml_error(MML_ERR_ARG, "decode: eos %d outside the vocabulary [0, %d)", (int)o->eos, vocab);
    if (!isfinite(o->length_penalty))
        return mml_error(MML_ERR_ARG, "decode: length_penalty %g is not finite", (double)o->length_penalty);
    if (cap < o->max_len) return mml_error(MML_ERR_ARG, "decode: cap %d < max_len %d", cap, o->max_len);
    return MML_OK;
}

int mml_decode_beam(mml_decode_step_fn step, void *user, int vocab, const mml_decode_options *o, int32_t *out,
                    int cap, float *score)
{
    assert(step && o && out);
    beam_search s;
    if (check_options(vocab, o, cap) != MML_OK || beam_init(&s, vocab, o) != MML_OK) return -1;
    for (int len = 1; len <= o->max_len && s.n_live > 0 && s.n_finished < o->beam; len++) {
        for (int i = 0; i < s.n_live; i++) s.seqs[i] = s.rows + (size_t)i * (size_t)s.row_len;
        if (step(user, s.seqs, s.n_live, len, s.step_logp) != MML_OK) {
            mml_error_prefix("decode: step %d: ", len);
            beam_free(&s);
            return -1;
        }
        int m = rank_candidates(&s);
        if (m < 0) {
            beam_free(&s);
            return -1;
        }
        advance(&s, m, len);
    }
    assert(s.n_finished > 0); /* the best continuation of the last step finishes */
    memcpy(out, s.best, (size_t)s.best_len * sizeof *out);
    if (score) *score = (float)s.best_score;
    int n = s.best_len;
    beam_free(&s);
    return n;
}
