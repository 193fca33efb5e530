/* mml/fusion.h: fusion of per-modality encodings into one representation.
 *
 *   "fusion": {"type": "lowrank", "rank": 8, "out": 64, "missing": "learned"}
 *
 * Types (the paper each follows is cited where it is built, src/fusion/fusion.c):
 *   early      concatenation of the raw features (encoders of type "flatten")
 *   concat     concatenation of the embeddings (intermediate fusion)
 *   late       per-modality classifiers combined by "combine": mean | learned | poe
 *              (product of experts); the output is the logits of the task
 *   tensor     TFN: outer product of the embeddings each extended by 1
 *   lowrank    LMF: the tensor-fusion product with rank-"rank" factors, to "out"
 *   attention  per-sample softmax weights over modalities (reported), to "out"
 *   crossattn  MulT-style: each modality's sequence attends to every other one's,
 *              "d_model", "heads"
 *   gmu        gated multimodal unit, to "out"
 * Every type takes any number of modalities and a per-sample presence mask.
 * A missing modality is masked out where the method has weights to mask
 * (late, attention, gmu, crossattn) and otherwise replaced by "missing":
 * zero (default), mean (running mean of the embedding) or learned (a trained
 * placeholder vector). */
#ifndef MML_FUSION_H
#define MML_FUSION_H

#include "mml/encoder.h"

typedef struct mml_fusion mml_fusion;

typedef struct mml_fusion_shape {
    int n;                          /* modalities */
    int64_t dim[MML_MOD_COUNT];     /* pooled embedding sizes */
    int64_t seq_dim[MML_MOD_COUNT]; /* sequence widths */
    bool raw[MML_MOD_COUNT];        /* encoder is "flatten" */
    int64_t n_out;                  /* task outputs (late fusion's heads) */
} mml_fusion_shape;

mml_status mml_fusion_build(const mml_cfg_node *node, const mml_fusion_shape *shape, mml_params *ps,
                            const char *prefix, uint64_t seed, mml_fusion **out);
void mml_fusion_free(mml_fusion *f);

/* enc[i], present[i] (F32 [B], 1 present / 0 missing) for each modality i.
 * *weights (if not NULL) receives the per-sample modality weights [B, n] of
 * attention, gmu and learned late fusion, or NULL. */
mml_tensor *mml_fusion_forward(mml_ctx *ctx, mml_fusion *f, const mml_encoding *enc, mml_tensor *const *present,
                               mml_tensor **weights);

int64_t mml_fusion_dim(const mml_fusion *f);
bool mml_fusion_outputs_logits(const mml_fusion *f); /* late fusion */
bool mml_fusion_reads_seq(const mml_fusion *f);       /* uses mml_encoding.seq (crossattn) */
const char *mml_fusion_type(const mml_fusion *f);

#endif
