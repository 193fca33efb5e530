/* mml/nn.h: layers with named parameters in a parameter store, PyTorch's
 * parameter names, layouts and default initialisation, so a state_dict
 * exported from PyTorch loads unchanged (names are prefix + torch's name).
 *
 *     mml_nn_rnn gru;
 *     mml_nn_rnn_init(&gru, params, "encoder.gru", MML_RNN_GRU, 40, 128, 1, true, &rng);
 *     mml_tensor *h_n;
 *     mml_tensor *y = mml_nn_rnn_forward(ctx, &gru, x, lengths, &h_n);  // x [B, T, 40]
 *
 * Every forward takes batch-first input and returns step tensors (autograd.h). */
#ifndef MML_NN_H
#define MML_NN_H

#include "mml/ops.h"
#include "mml/params.h"
#include "mml/rng.h"

typedef enum mml_activation { MML_ACT_RELU = 0, MML_ACT_GELU } mml_activation;

/* nn.Linear: weight [out, in], bias [out]. */
typedef struct mml_nn_linear {
    mml_tensor *weight, *bias;
} mml_nn_linear;

mml_status mml_nn_linear_init(mml_nn_linear *l, mml_params *ps, const char *prefix, int64_t in, int64_t out,
                              bool bias, mml_rng *rng);
mml_tensor *mml_nn_linear_forward(mml_ctx *ctx, const mml_nn_linear *l, mml_tensor *x);

/* nn.LayerNorm over the last dim. */
typedef struct mml_nn_layer_norm {
    mml_tensor *weight, *bias;
    float eps;
} mml_nn_layer_norm;

mml_status mml_nn_layer_norm_init(mml_nn_layer_norm *l, mml_params *ps, const char *prefix, int64_t dim, float eps);
mml_tensor *mml_nn_layer_norm_forward(mml_ctx *ctx, const mml_nn_layer_norm *l, mml_tensor *x);

/* nn.Embedding: weight [V, D] ~ N(0, 1). */
typedef struct mml_nn_embedding {
    mml_tensor *weight;
} mml_nn_embedding;

mml_status mml_nn_embedding_init(mml_nn_embedding *e, mml_params *ps, const char *prefix, int64_t vocab, int64_t dim,
                                 mml_rng *rng);

/* nn.Conv2d (torch layout and init) and nn.BatchNorm2d (running statistics as buffers). */
typedef struct mml_nn_conv2d {
    mml_tensor *weight, *bias;
    mml_conv_args args;
} mml_nn_conv2d;

mml_status mml_nn_conv2d_init(mml_nn_conv2d *c, mml_params *ps, const char *prefix, int64_t in, int64_t out,
                              int kernel, int stride, int padding, bool bias, mml_rng *rng);
mml_tensor *mml_nn_conv2d_forward(mml_ctx *ctx, const mml_nn_conv2d *c, mml_tensor *x);

typedef struct mml_nn_batch_norm {
    mml_tensor *weight, *bias, *running_mean, *running_var;
    float momentum, eps;
} mml_nn_batch_norm;

mml_status mml_nn_batch_norm_init(mml_nn_batch_norm *b, mml_params *ps, const char *prefix, int64_t channels);
mml_tensor *mml_nn_batch_norm_forward(mml_ctx *ctx, const mml_nn_batch_norm *b, mml_tensor *x);

/* torchvision's BasicBlock: conv1 (3x3, stride) bn1 relu conv2 (3x3) bn2, plus
 * the input (through downsample.0 (1x1 conv, stride) and downsample.1 (bn)
 * when the shape changes), then relu. */
typedef struct mml_nn_resnet_block {
    mml_nn_conv2d conv1, conv2, down_conv;
    mml_nn_batch_norm bn1, bn2, down_bn;
    bool downsample;
} mml_nn_resnet_block;

mml_status mml_nn_resnet_block_init(mml_nn_resnet_block *b, mml_params *ps, const char *prefix, int64_t in,
                                    int64_t out, int stride, mml_rng *rng);
mml_tensor *mml_nn_resnet_block_forward(mml_ctx *ctx, const mml_nn_resnet_block *b, mml_tensor *x);

/* ViT patch embedding: proj (conv, kernel = stride = patch) to [B, N, D], a
 * learned cls_token [1, 1, D] in front and pos_embed [1, N + 1, D] added
 * (timm's names; both start from N(0, 0.02)). */
typedef struct mml_nn_patch_embed {
    mml_nn_conv2d proj;
    mml_tensor *cls_token, *pos_embed;
    int64_t patches, dim;
} mml_nn_patch_embed;

mml_status mml_nn_patch_embed_init(mml_nn_patch_embed *p, mml_params *ps, const char *prefix, int64_t channels,
                                   int64_t image_size, int patch, int64_t dim, mml_rng *rng);
mml_tensor *mml_nn_patch_embed_forward(mml_ctx *ctx, const mml_nn_patch_embed *p, mml_tensor *x);

/* MLP as nn.Sequential(Linear, act, [Dropout,] Linear, ...): linear k is
 * named "{prefix}.{index in the Sequential}". sizes[0] is the input. */
#define MML_MLP_MAX_LAYERS 8
typedef struct mml_nn_mlp {
    mml_nn_linear layers[MML_MLP_MAX_LAYERS];
    int n;
    mml_activation act;
    float dropout;
} mml_nn_mlp;

mml_status mml_nn_mlp_init(mml_nn_mlp *m, mml_params *ps, const char *prefix, const int64_t *sizes, int n_sizes,
                           mml_activation act, float dropout, mml_rng *rng);
/* No activation after the last linear layer. */
mml_tensor *mml_nn_mlp_forward(mml_ctx *ctx, const mml_nn_mlp *m, mml_tensor *x, mml_rng *rng);

/* ---- recurrent ---- */

typedef enum mml_rnn_kind { MML_RNN_GRU = 0, MML_RNN_LSTM } mml_rnn_kind;

#define MML_RNN_MAX_LAYERS 8

typedef struct mml_nn_rnn {
    mml_rnn_kind kind;
    int64_t input, hidden;
    int layers, dirs;
    /* [layer][direction]: weight_ih [G*H, in], weight_hh [G*H, H], biases [G*H]; G = 3 (GRU) or 4 (LSTM) */
    mml_tensor *w_ih[MML_RNN_MAX_LAYERS][2], *w_hh[MML_RNN_MAX_LAYERS][2];
    mml_tensor *b_ih[MML_RNN_MAX_LAYERS][2], *b_hh[MML_RNN_MAX_LAYERS][2];
} mml_nn_rnn;

/* nn.GRU / nn.LSTM with batch_first=True; names weight_ih_l{k}[_reverse] etc. */
mml_status mml_nn_rnn_init(mml_nn_rnn *r, mml_params *ps, const char *prefix, mml_rnn_kind kind, int64_t input,
                           int64_t hidden, int layers, bool bidirectional, mml_rng *rng);
/* x [B, T, input]; lengths I32 [B] or NULL (all T). Returns [B, T, dirs*hidden]
 * with zeros past each sequence's length (as a packed sequence padded back);
 * *h_n (if not NULL) receives the final hidden states [layers*dirs, B, hidden],
 * taken at each sequence's length. */
mml_tensor *mml_nn_rnn_forward(mml_ctx *ctx, const mml_nn_rnn *r, mml_tensor *x, const mml_tensor *lengths,
                               mml_tensor **h_n);

/* ---- attention ---- */

/* nn.MultiheadAttention(batch_first=True): in_proj_weight [3E, E], in_proj_bias,
 * out_proj.weight, out_proj.bias. */
typedef struct mml_nn_mha {
    int64_t embed, heads;
    mml_tensor *in_proj_weight, *in_proj_bias;
    mml_nn_linear out_proj;
    float dropout;
} mml_nn_mha;

mml_status mml_nn_mha_init(mml_nn_mha *a, mml_params *ps, const char *prefix, int64_t embed, int64_t heads,
                           float dropout, mml_rng *rng);
/* q [B, Tq, E], k and v [B, Tk, E]. key_padding_mask [B, Tk] (nonzero: padded,
 * ignored) and attn_mask [Tq, Tk] (nonzero: may not attend, e.g.
 * mml_causal_mask) may be NULL. The averaged attention weights [B, Tq, Tk]
 * go to *weights when it is not NULL (no gradient flows through them). */
mml_tensor *mml_nn_mha_forward(mml_ctx *ctx, const mml_nn_mha *a, mml_tensor *q, mml_tensor *k, mml_tensor *v,
                               mml_tensor *key_padding_mask, mml_tensor *attn_mask, mml_rng *rng,
                               mml_tensor **weights);

/* nn.TransformerEncoderLayer(batch_first=True, norm_first=pre_norm). */
typedef struct mml_nn_encoder_layer {
    mml_nn_mha self_attn;
    mml_nn_linear linear1, linear2;
    mml_nn_layer_norm norm1, norm2;
    bool pre_norm;
    mml_activation activation;
    float dropout;
} mml_nn_encoder_layer;

mml_status mml_nn_encoder_layer_init(mml_nn_encoder_layer *l, mml_params *ps, const char *prefix, int64_t d_model,
                                     int64_t heads, int64_t d_ff, float dropout, mml_activation act, bool pre_norm,
                                     mml_rng *rng);
mml_tensor *mml_nn_encoder_layer_forward(mml_ctx *ctx, const mml_nn_encoder_layer *l, mml_tensor *x,
                                         mml_tensor *key_padding_mask, mml_tensor *attn_mask, mml_rng *rng);

/* nn.TransformerDecoderLayer(batch_first=True, norm_first=pre_norm):
 * self_attn, multihead_attn (cross), linear1/2, norm1/2/3. */
typedef struct mml_nn_decoder_layer {
    mml_nn_mha self_attn, cross_attn;
    mml_nn_linear linear1, linear2;
    mml_nn_layer_norm norm1, norm2, norm3;
    bool pre_norm;
    mml_activation activation;
    float dropout;
} mml_nn_decoder_layer;

mml_status mml_nn_decoder_layer_init(mml_nn_decoder_layer *l, mml_params *ps, const char *prefix, int64_t d_model,
                                     int64_t heads, int64_t d_ff, float dropout, mml_activation act, bool pre_norm,
                                     mml_rng *rng);
/* tgt [B, Tt, E], memory [B, Ts, E]; tgt_mask (e.g. causal) and the padding masks may be NULL. */
mml_tensor *mml_nn_decoder_layer_forward(mml_ctx *ctx, const mml_nn_decoder_layer *l, mml_tensor *tgt,
                                         mml_tensor *memory, mml_tensor *tgt_mask, mml_tensor *tgt_padding_mask,
                                         mml_tensor *memory_padding_mask, mml_rng *rng);

#endif
