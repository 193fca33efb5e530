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

#endif
