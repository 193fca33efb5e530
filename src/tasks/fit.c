/* The training loop shared by the tasks (fit.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/optim.h"
#include "mml/progress.h"
#include "tasks/fit.h"

static void shuffle(int64_t *order, const fit_task *t, mml_rng *r)
{
    if (!t->rows) {
        mml_dataset_order(order, t->n, r);
        return;
    }
    memcpy(order, t->rows, (size_t)t->n * sizeof *order);
    for (int64_t i = t->n - 1; i > 0; i--) {
        int64_t j = mml_rng_below(r, (uint32_t)(i + 1)), x = order[i];
        order[i] = order[j], order[j] = x;
    }
}

typedef struct loop {
    const fit_task *t;
    const mml_train_options *o;
    mml_ctx *ctx;
    mml_optim opt;
    mml_lr_schedule sched;
    int64_t *order, steps, B;
} loop;

static mml_status epoch(loop *l, double *loss_out, mml_progress *bar)
{
    const fit_task *t = l->t;
    double sum = 0;
    mml_set_training(l->ctx, true);
    for (int64_t s = 0; s < l->steps; s++) {
        int64_t nb = s + 1 < l->steps || t->full_batches ? l->B : t->n - s * l->B;
        mml_ctx_reset(l->ctx);
        mml_batch b;
        mml_status rc = mml_dataset_batch(l->ctx, t->ds, l->order + s * l->B, nb, &b);
        if (rc != MML_OK) return rc;
        mml_tensor *loss = t->loss(l->ctx, t->user, &b, l->order + s * l->B);
        if (!loss || mml_backward(l->ctx, loss) != MML_OK) return mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
        if (l->o->clip_norm > 0) mml_clip_grad_norm(t->ps, l->o->clip_norm);
        mml_optim_step(&l->opt, mml_lr_at(&l->sched, l->opt.step));
        mml_params_zero_grad(t->ps);
        if (t->after_step) t->after_step(t->user);
        sum += mml_f32(loss)[0];
        if (l->o->progress) mml_progress_update(bar, s + 1, "loss %.4f", sum / (double)(s + 1));
    }
    *loss_out = sum / (double)l->steps;
    return MML_OK;
}

static void report(const loop *l, int e, double loss, double val, mml_progress *bar, double t0)
{
    const char *name = l->t->val_name ? l->t->val_name : "val";
    if (l->o->progress) mml_progress_finish(bar, "loss %.4f %s %.4f", loss, name, val);
    if (l->o->log)
        fprintf(l->o->log, "{\"epoch\": %d, \"train_loss\": %.6f, \"%s\": %.6f, \"seconds\": %.3f}\n", e + 1, loss, name,
                val, mml_now() - t0);
}

mml_status fit_run(const fit_task *t, const mml_train_options *o, double *train_loss, double *val, int cap, fit_result *res)
{
    memset(res, 0, sizeof *res);
    if (o->epochs > cap) return mml_error(MML_ERR_ARG, "train.epochs: at most %d", cap);
    if (t->n < (t->full_batches ? 2 : 1)) return mml_error(MML_ERR_ARG, "training: too few samples (%lld)", (long long)t->n);
    loop l = { .t = t, .o = o, .B = o->batch_size };
    if (t->full_batches && l.B > t->n) l.B = t->n;
    l.steps = t->full_batches ? t->n / l.B : (t->n + l.B - 1) / l.B;
    l.ctx = mml_ctx_create();
    l.order = mml_malloc((size_t)t->n * sizeof *l.order);
    mml_status rc = l.ctx && l.order ? MML_OK : MML_ERR_NOMEM;
    mml_optim_init(&l.opt, t->ps, &o->optim);
    l.sched = o->schedule;
    if (l.sched.base_lr == 0.0f) l.sched.base_lr = o->optim.lr;
    if (l.sched.kind == MML_LR_COSINE && l.sched.total_steps == 0) l.sched.total_steps = (int64_t)o->epochs * l.steps;
    mml_rng r;
    mml_rng_seed(&r, o->seed);
    double t0 = mml_now();
    for (int e = 0; e < o->epochs && rc == MML_OK; e++) {
        mml_progress bar;
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", e + 1, o->epochs);
        if (o->progress) mml_progress_start(&bar, label, l.steps, "batch");
        shuffle(l.order, t, &r);
        if ((rc = epoch(&l, &train_loss[e], &bar)) != MML_OK) break;
        /* Validation runs its own arena: the idle training one gives its
         * pages back, so the peak is the larger of the two, not their sum. */
        mml_ctx_trim(l.ctx);
        val[e] = t->validate ? t->validate(t->user) : NAN;
        res->epochs = e + 1;
        report(&l, e, train_loss[e], val[e], &bar, t0);
    }
    res->seconds = mml_now() - t0;
    double per_epoch = (double)(t->full_batches ? l.steps * l.B : t->n);
    res->samples_per_second = res->seconds > 0 ? per_epoch * res->epochs / res->seconds : 0;
    int slots = o->optim.kind == MML_OPTIM_SGD ? 1 : 2;
    res->train_bytes = l.ctx ? (double)mml_ctx_peak_bytes(l.ctx) + 4.0 * (double)mml_params_numel(t->ps) * (2 + slots) : 0;
    mml_free(l.order);
    mml_ctx_free(l.ctx);
    return rc;
}
