/* mml/encoder.h: per-modality encoders of a multimodal model. Each turns one
 * modality's batch of features into a fixed-size embedding [B, D] and, for
 * fusion methods that attend over positions, a sequence [B, N, Ds] with its
 * padding mask.
 *
 *   "encoders": {
 *     "image": {"type": "sequential", "layers": [{"type": "conv2d", "out": 16, "kernel": 5}, ...]},
 *     "audio": {"type": "rnn", "cell": "gru", "hidden": 64, "bidirectional": true, "pool": "mean"},
 *     "text":  {"type": "bag", "embed": 64}
 *   }
 *
 * Types: sequential (the layers of mml/model.h: MLP, CNN, 1-D CNN over log-mel
 * [n_mels, frames]), rnn (GRU/LSTM over frames or token embeddings), transformer
 * (pre-norm encoder over frames or tokens, learned positions), bag (mean of
 * token embeddings), flatten (the raw features, for early fusion). Optional
 * "out": a linear projection (with ReLU unless "activation": "none") to that size.
 * Audio features [n_mels, frames] enter sequence encoders as [frames, n_mels];
 * I32 token ids go through an embedding of "vocab" rows (default 49408, CLIP's).
 *
 * Parameters live in the caller's store under "PREFIX.". */
#ifndef MML_ENCODER_H
#define MML_ENCODER_H

#include "mml/config.h"
#include "mml/dataset.h"
#include "mml/params.h"

typedef struct mml_encoder mml_encoder;

typedef struct mml_encoding {
    mml_tensor *pooled;  /* [B, D] */
    mml_tensor *seq;     /* [B, N, Ds] */
    mml_tensor *pad;     /* F32 [B, N], 1 at padded positions; NULL when none */
} mml_encoding;

mml_status mml_encoder_build(const mml_cfg_node *node, const mml_feature_spec *in, mml_params *ps,
                             const char *prefix, uint64_t seed, mml_encoder **out);
void mml_encoder_free(mml_encoder *e);

/* x: the batch's features [B, spec...]; lengths I32 [B] for sequences or NULL. */
mml_status mml_encoder_forward(mml_ctx *ctx, mml_encoder *e, mml_tensor *x, mml_tensor *lengths, mml_encoding *out);

/* Whether forward makes out->seq, the features of every position (on by
 * default). A consumer that reads only out->pooled turns it off: encoders
 * that would copy their positions into [B, N, Ds] then give a [B, 1, D] view
 * of pooled instead. */
void mml_encoder_set_seq(mml_encoder *e, bool on);

int64_t mml_encoder_dim(const mml_encoder *e);      /* D */
int64_t mml_encoder_seq_dim(const mml_encoder *e);  /* Ds */
const char *mml_encoder_type(const mml_encoder *e);

#endif
