/* mml/ops.h: differentiable tensor ops.
 *
 * Every op takes the step context first and returns a new step tensor (see
 * mml/autograd.h), or NULL if an input is NULL or the shapes do not fit (the
 * message names the op and the shapes). Each op has a forward, a backward and
 * a reference kernel; tests hold them to PyTorch fixtures and finite
 * differences. Semantics and argument order follow PyTorch's functional API
 * (torch.nn.functional) unless noted. Index tensors are MML_I32 or MML_I64. */
#ifndef MML_OPS_H
#define MML_OPS_H

#include "mml/autograd.h"
#include "mml/rng.h"

#define MML_AXIS_ALL 127 /* reduce over every axis to a scalar */

/* ---- element-wise, NumPy broadcasting ---- */
mml_tensor *mml_add(mml_ctx *ctx, mml_tensor *a, mml_tensor *b);
mml_tensor *mml_sub(mml_ctx *ctx, mml_tensor *a, mml_tensor *b);
mml_tensor *mml_mul(mml_ctx *ctx, mml_tensor *a, mml_tensor *b);
mml_tensor *mml_div(mml_ctx *ctx, mml_tensor *a, mml_tensor *b);
mml_tensor *mml_add_scalar(mml_ctx *ctx, mml_tensor *x, float s);
mml_tensor *mml_mul_scalar(mml_ctx *ctx, mml_tensor *x, float s);
mml_tensor *mml_pow(mml_ctx *ctx, mml_tensor *x, float exponent);
mml_tensor *mml_neg(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_exp(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_log(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_sqrt(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_abs(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_clamp(mml_ctx *ctx, mml_tensor *x, float lo, float hi);

/* ---- activations ---- */
mml_tensor *mml_relu(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_leaky_relu(mml_ctx *ctx, mml_tensor *x, float slope);
mml_tensor *mml_gelu(mml_ctx *ctx, mml_tensor *x);      /* erf form */
mml_tensor *mml_gelu_tanh(mml_ctx *ctx, mml_tensor *x); /* approximate='tanh' */
mml_tensor *mml_quick_gelu(mml_ctx *ctx, mml_tensor *x); /* x * sigmoid(1.702 x) (CLIP) */
mml_tensor *mml_silu(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_sigmoid(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_tanh(mml_ctx *ctx, mml_tensor *x);
mml_tensor *mml_softmax(mml_ctx *ctx, mml_tensor *x, int axis);
mml_tensor *mml_log_softmax(mml_ctx *ctx, mml_tensor *x, int axis);
/* out = mask != 0 ? value : x; mask (any dtype) broadcasts to x. */
mml_tensor *mml_masked_fill(mml_ctx *ctx, mml_tensor *x, mml_tensor *mask, float value);
/* [T, T] float mask, 1 above the diagonal (positions a query must not see). */
mml_tensor *mml_causal_mask(mml_ctx *ctx, int64_t T);

/* ---- matrix products ---- */
/* a: [..., M, K] (or [..., K, M] with trans_a), b: [..., K, N] (or [..., N, K]
 * with trans_b). Batch dims equal, or one operand 2-D and shared. */
mml_tensor *mml_matmul(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, bool trans_a, bool trans_b);
/* x: [..., in], w: [out, in], b: [out] or NULL -> [..., out] (nn.Linear). */
mml_tensor *mml_linear(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b);
/* mml_relu(mml_linear(...)) in one op: the same values and gradients without
 * the pre-activation tensor and its gradient (half the memory of the pair). */
mml_tensor *mml_linear_relu(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b);
/* res + mml_linear(x, w, b) in one op (a residual connection): the linear's
 * own output, which nothing needs for the gradients, is never stored. */
mml_tensor *mml_linear_add(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b, mml_tensor *res);
/* Batched outer product: a [B, m], b [B, n] -> [B, m, n]. */
mml_tensor *mml_outer(mml_ctx *ctx, mml_tensor *a, mml_tensor *b);

/* Multi-head scaled dot-product attention as one op, heads merged in and out:
 * Q, K, V are columns [off, off + embed) of q [B, Tq, *], k and v [B, Tk, *]
 * (one packed [B, T, 3 * embed] projection may serve as all three), split
 * into `heads` heads. key_padding_mask [B, Tk] and attn_mask [Tq, Tk] (any
 * dtype, nonzero: masked) may be NULL. Dropout on the attention weights in
 * training mode draws from rng. Returns [B, Tq, embed]; *weights, when asked
 * for, receives the head-averaged weights [B, Tq, Tk] (no gradient). */
typedef struct mml_attention_args {
    int64_t embed, heads, q_off, k_off, v_off;
    mml_tensor *key_padding_mask, *attn_mask;
    float dropout;
    mml_rng *rng;
} mml_attention_args;
mml_tensor *mml_attention(mml_ctx *ctx, mml_tensor *q, mml_tensor *k, mml_tensor *v, const mml_attention_args *a,
                          mml_tensor **weights);

/* ---- reductions (axis or MML_AXIS_ALL) ---- */
mml_tensor *mml_sum(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim);
mml_tensor *mml_mean(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim);
mml_tensor *mml_max(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim);
mml_tensor *mml_min(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim);
/* correction 1: unbiased (torch default), 0: population. */
mml_tensor *mml_var(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim, int correction);
/* MML_I32 indices of the maximum along axis (first one on ties); no gradient. */
mml_tensor *mml_argmax(mml_ctx *ctx, mml_tensor *x, int axis, bool keepdim);

/* ---- shape and indexing ---- */
/* One dim may be -1. Shares data with x. */
mml_tensor *mml_reshape(mml_ctx *ctx, mml_tensor *x, int ndim, const int64_t *shape);
mml_tensor *mml_permute(mml_ctx *ctx, mml_tensor *x, const int *perm);
mml_tensor *mml_transpose(mml_ctx *ctx, mml_tensor *x, int axis0, int axis1);
mml_tensor *mml_concat(mml_ctx *ctx, mml_tensor *const *xs, int n, int axis);
/* Splits into n parts of the given sizes along axis; out[] receives n tensors. */
mml_status mml_split(mml_ctx *ctx, mml_tensor *x, int axis, int n, const int64_t *sizes,
                     mml_tensor **out);
/* x[start:end:step] along axis (negative start/end count from the end). */
mml_tensor *mml_slice(mml_ctx *ctx, mml_tensor *x, int axis, int64_t start, int64_t end,
                      int64_t step);
/* Constant padding; pads[2*i], pads[2*i+1]: before/after dim i (ndim pairs). */
mml_tensor *mml_pad(mml_ctx *ctx, mml_tensor *x, const int64_t *pads, float value);
/* Rows of weight [V, D] for each index: out shape idx.shape + [D]. */
mml_tensor *mml_embedding(mml_ctx *ctx, mml_tensor *weight, mml_tensor *idx);
/* torch.index_select: idx is 1-D. */
mml_tensor *mml_index_select(mml_ctx *ctx, mml_tensor *x, int axis, mml_tensor *idx);
/* torch.gather: out[i][j] = x[i][idx[i][j]] along axis; idx has x's ndim. */
mml_tensor *mml_gather(mml_ctx *ctx, mml_tensor *x, int axis, mml_tensor *idx);
/* torch.scatter_add: out = x, then out[..idx..] += src along axis. */
mml_tensor *mml_scatter_add(mml_ctx *ctx, mml_tensor *x, int axis, mml_tensor *idx,
                            mml_tensor *src);

/* ---- normalisation and regularisation ---- */
/* Over the last dim; weight/bias [D] or NULL. */
mml_tensor *mml_layer_norm(mml_ctx *ctx, mml_tensor *x, mml_tensor *weight, mml_tensor *bias,
                           float eps);
/* x: [N, C, *]. Training mode: batch statistics, and running_mean/var (heap
 * tensors [C], may be NULL) move by momentum (unbiased var, as torch).
 * Eval mode: running statistics. */
mml_tensor *mml_batch_norm(mml_ctx *ctx, mml_tensor *x, mml_tensor *weight, mml_tensor *bias,
                           mml_tensor *running_mean, mml_tensor *running_var, float momentum,
                           float eps);
/* Inverted dropout; identity in eval mode or when p == 0. */
mml_tensor *mml_dropout(mml_ctx *ctx, mml_tensor *x, float p, mml_rng *rng);

/* ---- convolution and pooling (NCL / NCHW) ---- */
typedef struct mml_conv_args {
    int stride[2], padding[2], dilation[2], output_padding[2];
    int groups;
    bool relu; /* ReLU applied in the same pass, as conv then mml_relu (not for transposed convs) */
    /* Then 2 x 2 max pooling, stride 2, in the same pass, as mml_max_pool2d
     * with kernel 2 (conv2d only): the full-size output is never stored,
     * backward keeps which of its window each pooled value came from. */
    bool max_pool2x2;
} mml_conv_args;
/* Defaults: stride 1, padding 0, dilation 1, output_padding 0, groups 1. */
mml_conv_args mml_conv_args_default(void);
/* x [N, C, L], w [O, C/groups, K], b [O] or NULL (1-D uses index 0 of args). */
mml_tensor *mml_conv1d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b,
                       const mml_conv_args *args);
mml_tensor *mml_conv2d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b,
                       const mml_conv_args *args);
/* w [C, O/groups, K...] as torch.nn.ConvTranspose. */
mml_tensor *mml_conv_transpose1d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b,
                                 const mml_conv_args *args);
mml_tensor *mml_conv_transpose2d(mml_ctx *ctx, mml_tensor *x, mml_tensor *w, mml_tensor *b,
                                 const mml_conv_args *args);
/* Pooling: kernel/stride/padding per spatial dim (stride 0 = kernel). avg pools
 * count padding like torch's default (count_include_pad=True). */
mml_tensor *mml_max_pool1d(mml_ctx *ctx, mml_tensor *x, int kernel, int stride, int padding);
mml_tensor *mml_max_pool2d(mml_ctx *ctx, mml_tensor *x, const int kernel[2], const int stride[2],
                           const int padding[2]);
mml_tensor *mml_avg_pool1d(mml_ctx *ctx, mml_tensor *x, int kernel, int stride, int padding);
mml_tensor *mml_avg_pool2d(mml_ctx *ctx, mml_tensor *x, const int kernel[2], const int stride[2],
                           const int padding[2]);
mml_tensor *mml_adaptive_avg_pool1d(mml_ctx *ctx, mml_tensor *x, int out_len);
mml_tensor *mml_adaptive_avg_pool2d(mml_ctx *ctx, mml_tensor *x, int out_h, int out_w);
/* F.interpolate(mode='bilinear') */
mml_tensor *mml_upsample_bilinear2d(mml_ctx *ctx, mml_tensor *x, int out_h, int out_w,
                                    bool align_corners);

/* ---- similarity ---- */
/* F.normalize(p=2): x / max(||x||, eps) along axis. */
mml_tensor *mml_l2_normalize(mml_ctx *ctx, mml_tensor *x, int axis, float eps);
/* F.cosine_similarity along axis (shapes broadcast). */
mml_tensor *mml_cosine_similarity(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, int axis, float eps);

#endif
