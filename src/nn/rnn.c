/* GRU and LSTM as torch defines them, batch-first, multi-layer,
 * bidirectional. The input projection of all time steps is one GEMM per layer
 * and direction; each step then adds h W_hh^T and applies the gates. Per-sequence
 * lengths are honoured with a mask m_t = [t < length]: the state only moves
 * where m_t = 1 and the output is m_t * h_t, which equals running each sequence
 * alone to its length (the reverse direction then starts at length - 1). */
#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* [B, 1, F] -> [B, F] for time step t of a [B, T, F] tensor. */
static mml_tensor *step_of(mml_ctx *ctx, mml_tensor *seq, int64_t t)
{
    mml_tensor *s = mml_slice(ctx, seq, 1, t, t + 1, 1);
    return s ? mml_reshape(ctx, s, 2, (int64_t[]){ seq->shape[0], seq->shape[2] }) : NULL;
}

static mml_tensor *chunk(mml_ctx *ctx, mml_tensor *x, int i, int64_t H) { return mml_slice(ctx, x, 1, i * H, (i + 1) * H, 1); }

/* One direction of one layer over the whole sequence. Returns [B, T, H]; the
 * final state goes to *h_last. */
static mml_tensor *run_direction(mml_ctx *ctx, const mml_nn_rnn *r, int l, int d, mml_tensor *x, mml_tensor **masks,
                                 mml_tensor **h_last)
{
    int64_t B = x->shape[0], T = x->shape[1], H = r->hidden;
    mml_tensor *gi = mml_linear(ctx, x, r->w_ih[l][d], r->b_ih[l][d]); /* [B, T, G*H] */
    mml_tensor *h = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ B, H }), *c = NULL;
    if (r->kind == MML_RNN_LSTM) c = mml_zeros(ctx, MML_F32, 2, (int64_t[]){ B, H });
    mml_tensor **outs = mml_arena_alloc(ctx, (size_t)T * sizeof *outs);
    if (!gi || !h || !outs) return NULL;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = d ? T - 1 - s : s;
        mml_tensor *g_x = step_of(ctx, gi, t), *g_h = mml_linear(ctx, h, r->w_hh[l][d], r->b_hh[l][d]);
        mml_tensor *h_new;
        if (r->kind == MML_RNN_GRU) {
            mml_tensor *rg = mml_sigmoid(ctx, mml_add(ctx, chunk(ctx, g_x, 0, H), chunk(ctx, g_h, 0, H)));
            mml_tensor *z = mml_sigmoid(ctx, mml_add(ctx, chunk(ctx, g_x, 1, H), chunk(ctx, g_h, 1, H)));
            mml_tensor *n = mml_tanh(ctx, mml_add(ctx, chunk(ctx, g_x, 2, H), mml_mul(ctx, rg, chunk(ctx, g_h, 2, H))));
            h_new = mml_add(ctx, n, mml_mul(ctx, z, mml_sub(ctx, h, n))); /* (1-z) n + z h */
        } else {
            mml_tensor *gates = mml_add(ctx, g_x, g_h);
            mml_tensor *ig = mml_sigmoid(ctx, chunk(ctx, gates, 0, H)), *fg = mml_sigmoid(ctx, chunk(ctx, gates, 1, H));
            mml_tensor *gg = mml_tanh(ctx, chunk(ctx, gates, 2, H)), *og = mml_sigmoid(ctx, chunk(ctx, gates, 3, H));
            mml_tensor *c_new = mml_add(ctx, mml_mul(ctx, fg, c), mml_mul(ctx, ig, gg));
            h_new = mml_mul(ctx, og, mml_tanh(ctx, c_new));
            if (masks) c_new = mml_add(ctx, c, mml_mul(ctx, masks[t], mml_sub(ctx, c_new, c)));
            c = c_new;
        }
        if (masks) {
            h = mml_add(ctx, h, mml_mul(ctx, masks[t], mml_sub(ctx, h_new, h)));
            outs[t] = mml_mul(ctx, masks[t], h_new);
        } else h = outs[t] = h_new;
        if (!h || !outs[t]) return NULL;
        outs[t] = mml_reshape(ctx, outs[t], 3, (int64_t[]){ B, 1, H });
    }
    *h_last = h;
    return mml_concat(ctx, outs, (int)T, 1);
}

static mml_status make_masks(mml_ctx *ctx, const mml_tensor *lengths, int64_t B, int64_t T, mml_tensor ***out)
{
    *out = NULL;
    if (!lengths) return MML_OK;
    if (lengths->dtype != MML_I32 || lengths->numel != B)
        return mml_error(MML_ERR_SHAPE, "rnn: lengths must be I32 [%lld]", (long long)B);
    mml_tensor **m = mml_arena_alloc(ctx, (size_t)T * sizeof *m);
    if (!m) return MML_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++)
        if (mml_i32(lengths)[b] < 1 || mml_i32(lengths)[b] > T)
            return mml_error(MML_ERR_SHAPE, "rnn: length %d of sequence %lld is not in [1, %lld]", mml_i32(lengths)[b],
                             (long long)b, (long long)T);
    for (int64_t t = 0; t < T; t++) {
        m[t] = mml_new(ctx, MML_F32, 2, (int64_t[]){ B, 1 });
        if (!m[t]) return MML_ERR_NOMEM;
        for (int64_t b = 0; b < B; b++) mml_f32(m[t])[b] = t < mml_i32(lengths)[b] ? 1.0f : 0.0f;
    }
    *out = m;
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
    mml_tensor **masks;
    if (make_masks(ctx, lengths, x->shape[0], x->shape[1], &masks) != MML_OK) return NULL;
    mml_tensor *finals[2 * MML_RNN_MAX_LAYERS];
    for (int l = 0; l < r->layers && x; l++) {
        mml_tensor *dir_out[2];
        for (int d = 0; d < r->dirs; d++) dir_out[d] = run_direction(ctx, r, l, d, x, masks, &finals[l * r->dirs + d]);
        x = r->dirs == 2 ? mml_concat(ctx, dir_out, 2, 2) : dir_out[0];
    }
    if (x && h_n) {
        int n = r->layers * r->dirs;
        for (int i = 0; i < n; i++)
            finals[i] = mml_reshape(ctx, finals[i], 3, (int64_t[]){ 1, x->shape[0], r->hidden });
        *h_n = mml_concat(ctx, finals, n, 0);
    }
    return x;
}
