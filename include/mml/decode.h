/* mml/decode.h: sequence generation from a next-token model, greedy or by
 * beam search, over a step function that scores continuations, so any
 * decoder (an RNN, a transformer, a table in the tests) plugs in.
 *
 *     static mml_status step(void *user, const int32_t *const *seqs, int n, int len, float *logp)
 *     {
 *         ...  // logp[i * vocab + t] = log P(t | seqs[i][0, len)), e.g. a log-softmax of logits
 *     }
 *     mml_decode_options o = { .beam = 3, .max_len = 20, .bos = 2, .eos = 3, .length_penalty = 1.0f };
 *     int32_t ids[20];
 *     float score;
 *     int n = mml_decode_beam(step, model, vocab, &o, ids, 20, &score);  // -1: mml_last_error()
 *
 * Thread safety: reentrant; the step function is called on the calling thread. */
#ifndef MML_DECODE_H
#define MML_DECODE_H

#include <stdint.h>

#include "mml/error.h"

/* Scores the next token of each of n partial sequences seqs[i][0, len) (all
 * of length len, starting with bos): writes log-probabilities logp[n, vocab].
 * An error it returns ends the search. */
typedef mml_status (*mml_decode_step_fn)(void *user, const int32_t *const *seqs, int n, int len, float *logp);

typedef struct mml_decode_options {
    int beam;             /* hypotheses kept per step; 1 is greedy decoding */
    int max_len;          /* most generated tokens, eos included */
    int32_t bos, eos;     /* ids in [0, vocab) */
    float length_penalty; /* finished ones rank by logp / len^length_penalty; 0: raw logp */
} mml_decode_options;

/* Beam search from [bos], fairseq's rule. Each step scores every live
 * hypothesis (one call of step) and ranks all their continuations by total
 * log-probability (ties: the better-ranked hypothesis, then the lower token
 * id). A continuation by eos among the first `beam` ranks finishes; the best
 * `beam` others stay live. At max_len every continuation among the first
 * `beam` finishes, eos or not. The search stops when `beam` hypotheses have
 * finished or at max_len, and returns the finished one with the highest
 * logp / len^length_penalty, len counting generated tokens with eos (ties: the
 * first to finish). Writes its tokens without bos and eos to out[0, cap) and
 * its score to *score (may be NULL); returns the token count, or -1 with an
 * error: MML_ERR_ARG naming the option (beam or max_len < 1, bos or eos
 * outside the vocabulary, cap < max_len), for a NaN log-probability, or the
 * step function's own. */
int mml_decode_beam(mml_decode_step_fn step, void *user, int vocab, const mml_decode_options *o, int32_t *out,
                    int cap, float *score);

#endif
