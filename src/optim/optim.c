/* torch.optim's SGD, Adam and AdamW update rules, one flat loop per parameter. */
#include <math.h>

#include "mml/optim.h"
#include "mml/threads.h"

/* Elements per task: big tensors (a CNN's first linear layer) update on every thread. */
#define UPDATE_GRAIN 32768

enum { SLOT_MOMENTUM = 0, SLOT_M = 0, SLOT_V = 1 };

mml_optim_config mml_optim_defaults(mml_optim_kind kind)
{
    mml_optim_config c = { .kind = kind, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
    if (kind == MML_OPTIM_SGD) c.lr = 0.01f;
    if (kind == MML_OPTIM_ADAMW) c.weight_decay = 0.01f;
    return c;
}

void mml_optim_init(mml_optim *o, mml_params *params, const mml_optim_config *cfg)
{
    o->cfg = *cfg;
    o->params = params;
    o->step = 0;
}

static float penalised_grad(const mml_optim_config *c, float g, float p, bool coupled_l2)
{
    if (coupled_l2) g += c->weight_decay * p;
    if (c->l1 != 0.0f) g += c->l1 * (float)((p > 0.0f) - (p < 0.0f));
    return g;
}

typedef struct update_job {
    const mml_optim_config *c;
    float lr;
    int64_t t;
    float *p, *buf, *m, *v;
    const float *g;
    bool first;
} update_job;

static void sgd_range(void *arg, int64_t lo, int64_t hi, int thread)
{
    const update_job *j = arg;
    const mml_optim_config *c = j->c;
    for (int64_t i = lo; i < hi; i++) {
        float d = penalised_grad(c, j->g[i], j->p[i], true);
        if (c->momentum != 0.0f) {
            j->buf[i] = j->first ? d : c->momentum * j->buf[i] + (1.0f - c->dampening) * d;
            d = c->nesterov ? d + c->momentum * j->buf[i] : j->buf[i];
        }
        j->p[i] -= j->lr * d;
    }
}

static void adam_range(void *arg, int64_t lo, int64_t hi, int thread)
{
    const update_job *j = arg;
    const mml_optim_config *c = j->c;
    bool decoupled = c->kind == MML_OPTIM_ADAMW;
    float bc1 = 1.0f - powf(c->beta1, (float)j->t), bc2 = 1.0f - powf(c->beta2, (float)j->t);
    float step = j->lr / bc1, sqrt_bc2 = sqrtf(bc2), lr = j->lr;
    float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
    const float *restrict g = j->g;
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps, decay = decoupled ? 1.0f - lr * c->weight_decay : 1.0f;
    if (c->l1 == 0.0f && (decoupled || c->weight_decay == 0.0f)) {
        /* No penalty in the gradient: locals and no branches, so it vectorises
         * (the general loop below runs one value at a time). Same arithmetic. */
        for (int64_t i = lo; i < hi; i++) {
            float pi = p[i] * decay, gi = g[i];
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            p[i] = pi - step * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
        }
        return;
    }
    for (int64_t i = lo; i < hi; i++) {
        if (decoupled) p[i] *= decay;
        float gi = penalised_grad(c, g[i], p[i], !decoupled);
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
    }
}

void mml_optim_step(mml_optim *o, float lr)
{
    const mml_optim_config *c = &o->cfg;
    bool first = o->step == 0;
    o->step++;
    for (int i = 0; i < mml_params_count(o->params); i++) {
        if (mml_params_is_buffer(o->params, i) || mml_params_frozen(o->params, i)) continue;
        mml_tensor *t = mml_params_at(o->params, i);
        update_job j = { c, lr, o->step, mml_f32(t), NULL, NULL, NULL, t->grad, first };
        if (c->kind == MML_OPTIM_SGD) {
            j.buf = c->momentum != 0.0f ? mml_params_state(o->params, i, SLOT_MOMENTUM) : NULL;
            mml_parallel_for(t->numel, UPDATE_GRAIN, sgd_range, &j);
        } else {
            j.m = mml_params_state(o->params, i, SLOT_M);
            j.v = mml_params_state(o->params, i, SLOT_V);
            mml_parallel_for(t->numel, UPDATE_GRAIN, adam_range, &j);
        }
    }
}

float mml_clip_grad_norm(mml_params *params, float max_norm)
{
    double sq = 0.0;
    for (int i = 0; i < mml_params_count(params); i++) {
        mml_tensor *t = mml_params_at(params, i);
        if (!t->grad || mml_params_frozen(params, i)) continue;
        for (int64_t k = 0; k < t->numel; k++) sq += (double)t->grad[k] * t->grad[k];
    }
    float norm = (float)sqrt(sq), coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f)
        for (int i = 0; i < mml_params_count(params); i++) {
            mml_tensor *t = mml_params_at(params, i);
            if (!t->grad || mml_params_frozen(params, i)) continue;
            for (int64_t k = 0; k < t->numel; k++) t->grad[k] *= coef;
        }
    return norm;
}

float mml_lr_at(const mml_lr_schedule *s, int64_t step)
{
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return s->base_lr * (float)(step + 1) / (float)s->warmup_steps;
    int64_t t = step - s->warmup_steps;
    switch (s->kind) {
    case MML_LR_STEP:
        return s->step_size > 0 ? s->base_lr * powf(s->gamma, (float)(t / s->step_size)) : s->base_lr;
    case MML_LR_COSINE: {
        int64_t span = s->total_steps - s->warmup_steps;
        if (span <= 0 || t >= span) return s->min_lr;
        return s->min_lr + 0.5f * (s->base_lr - s->min_lr) * (1.0f + cosf(3.14159265358979f * (float)t / (float)span));
    }
    default:
        return s->base_lr;
    }
}
