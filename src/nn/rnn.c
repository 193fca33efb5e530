/* GRU and LSTM as torch defines them, batch-first, multi-layer,
 * bidirectional. Each layer and direction is one fused node
 * (core/ops/rnn.c): the input projection of all time steps as one GEMM, then
 * the recurrence. Per-sequence lengths are honoured with a mask
 * m_t = [t < length]: the state only moves where m_t = 1 and the output is
 * m_t * h_t, which equals running each sequence alone to its length (the
 * reverse direction then starts at length - 1). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops/rnn.h"
#include "mml/nn.h"

mml_status mml_nn_rnn_init(mml_nn_rnn *r, mml_params *ps, const char *prefix, mml_rnn_kind kind, int64_t input,
                           int64_t hidden, int layers, bool bidirectional, mml_rng *rng)
{
    if (layers < 1 || layers > MML_RNN_MAX_LAYERS || hidden < 1 || input < 1)
        return mml_error(MML_ERR_ARG, "%s: rnn needs 1..%d layers and positive sizes", prefix, MML_RNN_MAX_LAYERS);
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->input = input;
    r->hidden = hidden;
    r->layers = layers;
    r->dirs = bidirectional ? 2 : 1;
    int64_t G = (kind == MML_RNN_GRU ? 3 : 4) * hidden;
    float bound = 1.0f / sqrtf((float)hidden);
    for (int l = 0; l < layers; l++)
        for (int d = 0; d < r->dirs; d++) {
            int64_t in = l == 0 ? input : hidden * r->dirs;
            const char *suffix = d ? "_reverse" : "";
            char name[256];
            mml_tensor **slots[4] = { &r->w_ih[l][d], &r->w_hh[l][d], &r->b_ih[l][d], &r->b_hh[l][d] };
            const char *kinds[4] = { "weight_ih", "weight_hh", "bias_ih", "bias_hh" };
            for (int k = 0; k < 4; k++) {
                snprintf(name, sizeof name, "%s%s%s_l%d%s", prefix, prefix[0] ? "." : "", kinds[k], l, suffix);
                int64_t shape[2] = { G, k == 0 ? in : hidden };
                *slots[k] = mml_params_add(ps, name, k < 2 ? 2 : 1, shape);
                if (!*slots[k]) return mml_last_status();
                for (int64_t i = 0; i < (*slots[k])->numel; i++)
                    mml_f32(*slots[k])[i] = (2.0f * mml_rng_uniform(rng) - 1.0f) * bound;
            }
        }
    return MML_OK;
}

/* One direction of one layer over the whole sequence: [B, T, H]. */
static mml_tensor *run_direction(mml_ctx *ctx, const mml_nn_rnn *r, int l, int d, mml_tensor *x,
                                 const mml_tensor *lengths)
{
    mml_rnn_weights w = { r->w_ih[l][d], r->b_ih[l][d], r->w_hh[l][d], r->b_hh[l][d] };
    return r->kind == MML_RNN_GRU ? mml_gru_layer(ctx, &w, x, lengths, d) : mml_lstm_layer(ctx, &w, x, lengths, d);
}

/* The final state of a direction is its output at the last step it ran:
 * length - 1 going forward, 0 in reverse. Returns [1, B, H]. */
static mml_tensor *final_state(mml_ctx *ctx, mml_tensor *y, const mml_tensor *lengths, int d)
{
    int64_t B = y->shape[0], T = y->shape[1], H = y->shape[2];
    mml_tensor *idx = mml_new(ctx, MML_I32, 3, (int64_t[]){ B, 1, H });
    if (!idx) return NULL;
    for (int64_t b = 0; b < B; b++) {
        int32_t last = d ? 0 : (int32_t)(lengths ? mml_i32(lengths)[b] - 1 : T - 1);
        for (int64_t j = 0; j < H; j++) mml_i32(idx)[b * H + j] = last;
    }
    return mml_reshape(ctx, mml_gather(ctx, y, 1, idx), 3, (int64_t[]){ 1, B, H });
}

/* Lengths from 1: the final state is read at length - 1 (the op itself allows 0). */
static mml_status check_lengths(const mml_tensor *lengths, int64_t B, int64_t T)
{
    if (!lengths) return MML_OK;
    if (lengths->dtype != MML_I32 || lengths->numel != B)
        return mml_error(MML_ERR_SHAPE, "rnn: lengths must be I32 [%lld]", (long long)B);
    for (int64_t b = 0; b < B; b++)
        if (mml_i32(lengths)[b] < 1 || mml_i32(lengths)[b] > T)
            return mml_error(MML_ERR_SHAPE, "rnn: length %d of sequence %lld is not in [1, %lld]", mml_i32(lengths)[b],
                             (long long)b, (long long)T);
    return MML_OK;
}

mml_tensor *mml_nn_rnn_forward(mml_ctx *ctx, const mml_nn_rnn *r, mml_tensor *x, const mml_tensor *lengths,
                               mml_tensor **h_n)
{
    if (!x) return NULL;
    if (x->ndim != 3 || x->shape[2] != r->input) {
        char buf[64];
        mml_error(MML_ERR_SHAPE, "rnn: input %s, expected [batch, time, %lld]", mml_shape_str(x, buf, sizeof buf),
                  (long long)r->input);
        return NULL;
    }
    if (check_lengths(lengths, x->shape[0], x->shape[1]) != MML_OK) return NULL;
    mml_tensor *finals[2 * MML_RNN_MAX_LAYERS];
    for (int l = 0; l < r->layers && x; l++) {
        mml_tensor *dir_out[2] = { NULL, NULL };
        for (int d = 0; d < r->dirs; d++) {
            dir_out[d] = run_direction(ctx, r, l, d, x, lengths);
            finals[l * r->dirs + d] = h_n && dir_out[d] ? final_state(ctx, dir_out[d], lengths, d) : NULL;
        }
        x = r->dirs == 2 ? mml_concat(ctx, dir_out, 2, 2) : dir_out[0];
    }
    if (x && h_n) *h_n = mml_concat(ctx, finals, r->layers * r->dirs, 0);
    return x;
}
