/* mml/optim.h: optimizers over a parameter store, gradient clipping and
 * learning-rate schedules, with torch.optim's update rules and defaults.
 *
 *     mml_optim_config oc = mml_optim_defaults(MML_OPTIM_ADAMW);
 *     oc.lr = 1e-3f;
 *     mml_optim opt;
 *     mml_optim_init(&opt, params, &oc);
 *     ... mml_backward(ctx, loss);
 *     mml_clip_grad_norm(params, 1.0f);
 *     mml_optim_step(&opt, mml_lr_at(&schedule, opt.step));
 *     mml_params_zero_grad(params);
 *
 * State (momentum, Adam moments) lives in the store's state slots, so it is
 * saved and restored with the model. Frozen parameters and buffers are skipped. */
#ifndef MML_OPTIM_H
#define MML_OPTIM_H

#include <stdint.h>

#include "mml/params.h"

typedef enum mml_optim_kind { MML_OPTIM_SGD = 0, MML_OPTIM_ADAM, MML_OPTIM_ADAMW } mml_optim_kind;

typedef struct mml_optim_config {
    mml_optim_kind kind;
    float lr;
    float weight_decay; /* L2: added to the gradient (SGD, Adam); decoupled for AdamW */
    float l1;           /* L1 penalty: l1 * sign(p) added to the gradient */
    float momentum, dampening;
    bool nesterov;
    float beta1, beta2, eps;
} mml_optim_config;

/* torch defaults: SGD lr 0.01 (no momentum); Adam lr 1e-3, betas (0.9, 0.999),
 * eps 1e-8; AdamW the same with weight_decay 0.01. */
mml_optim_config mml_optim_defaults(mml_optim_kind kind);

typedef struct mml_optim {
    mml_optim_config cfg;
    mml_params *params;
    int64_t step; /* steps taken */
} mml_optim;

void mml_optim_init(mml_optim *o, mml_params *params, const mml_optim_config *cfg);
/* One update with learning rate lr (pass cfg.lr, or a schedule's value). */
void mml_optim_step(mml_optim *o, float lr);

/* Scales all gradients so their global L2 norm is at most max_norm; returns
 * the norm before clipping (torch.nn.utils.clip_grad_norm_). */
float mml_clip_grad_norm(mml_params *params, float max_norm);

typedef enum mml_lr_kind { MML_LR_CONSTANT = 0, MML_LR_STEP, MML_LR_COSINE } mml_lr_kind;

typedef struct mml_lr_schedule {
    mml_lr_kind kind;
    float base_lr;
    int64_t warmup_steps;  /* linear warm-up from 0 over these steps, then the schedule */
    int64_t step_size;     /* MML_LR_STEP: multiply by gamma every step_size steps */
    float gamma;
    int64_t total_steps;   /* MML_LR_COSINE: anneal to min_lr at total_steps */
    float min_lr;
} mml_lr_schedule;

/* Learning rate for update number `step` (0-based). */
float mml_lr_at(const mml_lr_schedule *s, int64_t step);

#endif
