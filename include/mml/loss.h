/* mml/loss.h: loss functions as differentiable ops (mean reduction, as torch's
 * defaults). Targets are class indices (I32/I64) or float tensors shaped like
 * the input. */
#ifndef MML_LOSS_H
#define MML_LOSS_H

#include "mml/autograd.h"

typedef struct mml_ce_options {
    const mml_tensor *class_weights; /* [C] or NULL */
    float label_smoothing;           /* in [0, 1) */
    int64_t ignore_index;            /* targets equal to it contribute nothing; default -100 */
} mml_ce_options;

mml_ce_options mml_ce_defaults(void);

/* F.cross_entropy: logits [N, C], target [N] class indices. A fused
 * log-softmax + NLL with torch's weighting: the mean divides by the summed
 * weights of the non-ignored targets. */
mml_tensor *mml_loss_cross_entropy(mml_ctx *ctx, mml_tensor *logits, mml_tensor *target,
                                   const mml_ce_options *opt);
mml_tensor *mml_loss_bce_with_logits(mml_ctx *ctx, mml_tensor *logits, mml_tensor *target);
mml_tensor *mml_loss_mse(mml_ctx *ctx, mml_tensor *input, mml_tensor *target);
mml_tensor *mml_loss_l1(mml_ctx *ctx, mml_tensor *input, mml_tensor *target);
mml_tensor *mml_loss_smooth_l1(mml_ctx *ctx, mml_tensor *input, mml_tensor *target, float beta);
/* F.kl_div(log_input, target, reduction='batchmean'): target as probabilities. */
mml_tensor *mml_loss_kl_div(mml_ctx *ctx, mml_tensor *log_input, mml_tensor *target);

/* nn.CosineEmbeddingLoss: y = +1 pulls cos(x1, x2) to 1, y = -1 pushes it
 * below margin. x1, x2 [N, D], y F32 [N]. */
mml_tensor *mml_loss_cosine_embedding(mml_ctx *ctx, mml_tensor *x1, mml_tensor *x2, mml_tensor *y, float margin);
/* nn.MarginRankingLoss: mean(max(0, -y * (x1 - x2) + margin)). */
mml_tensor *mml_loss_margin_ranking(mml_ctx *ctx, mml_tensor *x1, mml_tensor *x2, mml_tensor *y, float margin);
/* Bidirectional hinge ranking loss over a batch of pairs (VSE++): with
 * s = a b^T, for each anchor i the cost of every negative j != i is
 * max(0, margin - s_ii + s_ij) (and the same with rows and columns swapped);
 * summed over negatives, or only the hardest when `hardest`; mean over anchors. */
mml_tensor *mml_loss_hinge_ranking(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, float margin, bool hardest);
/* CLIP's symmetric InfoNCE: logits = exp(min(log_scale, ln 100)) * norm(a) norm(b)^T,
 * the mean of cross-entropy over rows and over columns with matching pairs on
 * the diagonal. log_scale is a learnable [1] parameter (CLIP starts at ln(1/0.07)). */
mml_tensor *mml_loss_info_nce(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, mml_tensor *log_scale);
/* Supervised contrastive loss across two views (Khosla et al., 2020, L_out):
 * the 2N L2-normalised embeddings of a and b [N, D] are anchors each; the
 * positives of an anchor are the other embeddings with the same label (its
 * pair included), the denominator sums over all other embeddings; loss =
 * mean over anchors with at least one positive of
 * -1/|P(i)| sum_p log(exp(z_i.z_p / t) / sum_{k != i} exp(z_i.z_k / t)).
 * labels I32 (or I64) [N]; temperature t > 0. */
mml_tensor *mml_loss_supcon(mml_ctx *ctx, mml_tensor *a, mml_tensor *b, mml_tensor *labels, float temperature);

#endif
