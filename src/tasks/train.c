#include <math.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/loss.h"
#include "mml/ops.h"
#include "mml/progress.h"
#include "mml/train.h"
#include "tasks/checkpoint.h"

mml_train_options mml_train_defaults(void)
{
    mml_train_options o = { .epochs = 10, .batch_size = 64, .optim = mml_optim_defaults(MML_OPTIM_ADAM) };
    o.schedule.kind = MML_LR_CONSTANT;
    return o;
}

static int64_t row_numel(const mml_tensor *x) { return x->shape[0] ? x->numel / x->shape[0] : 0; }

/* Step tensors holding rows[0..B) of x and y. */
static void gather(mml_ctx *ctx, const mml_tensor *x, const mml_tensor *y, const int64_t *rows, int64_t B,
                   mml_tensor **bx, mml_tensor **by)
{
    int64_t shape[MML_MAX_DIMS], k = row_numel(x);
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = B;
    *bx = mml_new(ctx, MML_F32, x->ndim, shape);
    *by = y ? mml_new(ctx, MML_I32, 1, &B) : NULL;
    if (!*bx || (y && !*by)) return;
    for (int64_t i = 0; i < B; i++) {
        memcpy(mml_f32(*bx) + i * k, mml_f32(x) + rows[i] * k, (size_t)k * sizeof(float));
        if (y) mml_i32(*by)[i] = mml_i32(y)[rows[i]];
    }
}

mml_status mml_evaluate_classifier(mml_model *m, const mml_tensor *x, const mml_tensor *y, const int64_t *rows,
                                   int64_t n, int64_t batch, double *loss, mml_confusion *cm, float *probs)
{
    mml_ctx *ctx = mml_ctx_create();
    int64_t *all = NULL;
    if (!ctx) return MML_ERR_NOMEM;
    if (!rows) {
        all = mml_malloc((size_t)n * sizeof *all + 1);
        if (!all) {
            mml_ctx_free(ctx);
            return MML_ERR_NOMEM;
        }
        for (int64_t i = 0; i < n; i++) all[i] = i;
        rows = all;
    }
    mml_set_grad_enabled(ctx, false);
    mml_set_training(ctx, false);
    double total = 0.0;
    mml_status rc = MML_OK;
    for (int64_t at = 0; at < n && rc == MML_OK; at += batch) {
        int64_t B = n - at < batch ? n - at : batch;
        mml_ctx_reset(ctx);
        mml_tensor *bx, *by;
        gather(ctx, x, y, rows + at, B, &bx, &by);
        mml_tensor *logits = mml_model_forward(ctx, m, bx);
        mml_tensor *l = y ? mml_loss_cross_entropy(ctx, logits, by, NULL) : logits;
        mml_tensor *p = mml_softmax(ctx, logits, -1);
        if (!l || !p) {
            rc = mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
            break;
        }
        int64_t C = logits->shape[1];
        if (y) total += (double)mml_f32(l)[0] * (double)B;
        for (int64_t i = 0; i < B; i++) {
            const float *row = mml_f32(p) + i * C;
            int best = 0;
            for (int c = 1; c < C; c++) best = row[c] > row[best] ? c : best;
            if (cm && y) mml_confusion_add(cm, mml_i32(by)[i], best);
            if (probs) memcpy(probs + (at + i) * C, row, (size_t)C * sizeof(float));
        }
    }
    if (loss) *loss = n ? total / (double)n : 0.0;
    mml_free(all);
    mml_ctx_free(ctx);
    return rc;
}

static void shuffle(int64_t *v, int64_t n, mml_rng *r)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(mml_rng_u64(r) % (uint64_t)(i + 1)), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Copies every parameter and buffer (to keep the best epoch's weights). */
static void snapshot(mml_params *ps, float *dst, bool restore)
{
    for (int i = 0; i < mml_params_count(ps); i++) {
        mml_tensor *t = mml_params_at(ps, i);
        size_t bytes = (size_t)t->numel * sizeof(float);
        if (restore) memcpy(t->data, dst, bytes);
        else memcpy(dst, t->data, bytes);
        dst += t->numel;
    }
}

static int64_t all_numel(mml_params *ps)
{
    int64_t n = 0;
    for (int i = 0; i < mml_params_count(ps); i++) n += mml_params_at(ps, i)->numel;
    return n;
}

typedef struct run {
    mml_model *m;
    const mml_tensor *x, *y;
    const mml_train_options *opt;
    mml_optim optim;
    mml_ce_options ce;
    mml_lr_schedule sched;
    int64_t *train_rows, n_train, *val_rows, n_val, steps_per_epoch;
    int64_t *base_rows; /* the training rows in their fixed order; each epoch shuffles a copy */
} run;

static mml_status train_epoch(run *r, mml_ctx *ctx, int epoch, mml_rng *rng, double *loss_out, double *acc_out)
{
    const mml_train_options *opt = r->opt;
    mml_params *ps = mml_model_params(r->m);
    /* Shuffle from the fixed order, so an epoch's order depends on the
     * generator's state alone (what a checkpoint restores). */
    memcpy(r->train_rows, r->base_rows, (size_t)r->n_train * sizeof(int64_t));
    shuffle(r->train_rows, r->n_train, rng);
    mml_progress bar;
    char label[64];
    snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, opt->epochs);
    if (opt->progress) mml_progress_start(&bar, label, r->n_train, "samples");
    double total = 0.0;
    int64_t seen = 0, correct = 0;
    mml_set_training(ctx, true);
    for (int64_t at = 0; at < r->n_train; at += opt->batch_size) {
        int64_t B = r->n_train - at < opt->batch_size ? r->n_train - at : opt->batch_size;
        mml_ctx_reset(ctx);
        mml_tensor *bx, *by;
        gather(ctx, r->x, r->y, r->train_rows + at, B, &bx, &by);
        mml_tensor *logits = mml_model_forward(ctx, r->m, bx);
        mml_tensor *loss = mml_loss_cross_entropy(ctx, logits, by, &r->ce);
        if (!loss || mml_backward(ctx, loss) != MML_OK) return mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
        if (!isfinite(mml_f32(loss)[0]))
            return mml_error(MML_ERR_ARG, "training diverged at epoch %d (loss is %g): lower train.optimizer.lr",
                             epoch + 1, mml_f32(loss)[0]);
        if (opt->clip_norm > 0) mml_clip_grad_norm(ps, opt->clip_norm);
        mml_optim_step(&r->optim, mml_lr_at(&r->sched, r->optim.step));
        mml_params_zero_grad(ps);
        total += (double)mml_f32(loss)[0] * (double)B;
        seen += B;
        int64_t C = logits->shape[1];
        for (int64_t i = 0; i < B; i++) {
            const float *row = mml_f32(logits) + i * C;
            int best = 0;
            for (int c = 1; c < C; c++) best = row[c] > row[best] ? c : best;
            correct += best == mml_i32(by)[i];
        }
        if (opt->progress) mml_progress_update(&bar, seen, "loss %.4f", total / (double)seen);
    }
    *loss_out = total / (double)seen;
    *acc_out = (double)correct / (double)seen;
    if (opt->progress) mml_progress_finish(&bar, "loss %.4f acc %.4f", *loss_out, *acc_out);
    return MML_OK;
}

static mml_status split_rows(run *r, mml_rng *rng)
{
    int64_t N = r->x->shape[0];
    r->train_rows = mml_malloc((size_t)N * sizeof(int64_t) + 8);
    if (!r->train_rows) return MML_ERR_NOMEM;
    for (int64_t i = 0; i < N; i++) r->train_rows[i] = i;
    r->n_val = (int64_t)((double)N * r->opt->val_fraction);
    if (r->n_val > 0) shuffle(r->train_rows, N, rng);
    r->n_train = N - r->n_val;
    r->val_rows = r->train_rows + r->n_train;
    if (r->n_train < 1) return mml_error(MML_ERR_ARG, "train: no training samples left after the validation split");
    r->base_rows = mml_malloc((size_t)r->n_train * sizeof(int64_t));
    if (!r->base_rows) return MML_ERR_NOMEM;
    memcpy(r->base_rows, r->train_rows, (size_t)r->n_train * sizeof(int64_t));
    return MML_OK;
}

mml_status mml_train_classifier(mml_model *m, const mml_tensor *x, const mml_tensor *y, int n_classes,
                                const mml_train_options *opt, mml_train_result *res)
{
    memset(res, 0, sizeof *res);
    if (mml_model_output_size(m) != n_classes)
        return mml_error(MML_ERR_SHAPE, "train: the model's last layer gives %lld outputs but the data has %d classes",
                         (long long)mml_model_output_size(m), n_classes);
    run r = { .m = m, .x = x, .y = y, .opt = opt, .ce = mml_ce_defaults() };
    r.ce.label_smoothing = opt->label_smoothing;
    mml_rng rng;
    mml_rng_seed(&rng, opt->seed ^ 0x5eedULL);
    mml_params *ps = mml_model_params(m);
    mml_optim_init(&r.optim, ps, &opt->optim);
    mml_status rc = split_rows(&r, &rng);
    /* The schedule starts from the optimizer's rate; cosine spans the whole run. */
    r.sched = opt->schedule;
    if (r.sched.base_lr == 0.0f) r.sched.base_lr = opt->optim.lr;
    if (r.sched.kind == MML_LR_COSINE && r.sched.total_steps == 0)
        r.sched.total_steps = (int64_t)opt->epochs * ((r.n_train + opt->batch_size - 1) / opt->batch_size);
    float *best = r.n_val ? mml_malloc((size_t)all_numel(ps) * sizeof(float) + 4) : NULL;
    mml_ctx *ctx = mml_ctx_create();
    if (rc == MML_OK && (!ctx || (r.n_val && !best))) rc = MML_ERR_NOMEM;
    double t0 = mml_now(), best_val = INFINITY;
    int since_best = 0, first_epoch = 0;
    res->best_epoch = -1;
    mml_train_state state = { ps, &rng, mml_model_rng(m), 0, 0, INFINITY, 0, -1, best, best ? all_numel(ps) : 0 };
    if (rc == MML_OK && opt->resume) {
        rc = mml_checkpoint_load(opt->resume, &state);
        first_epoch = state.epoch;
        r.optim.step = state.step;
        best_val = state.best_val;
        since_best = state.since_best;
        res->best_epoch = state.best_epoch;
        res->epochs_run = state.epoch;
    }
    for (int e = first_epoch; e < opt->epochs && rc == MML_OK; e++) {
        double loss = 0.0, acc = 0.0, vloss = NAN, vacc = NAN, te = mml_now();
        rc = train_epoch(&r, ctx, e, &rng, &loss, &acc);
        if (rc != MML_OK) break;
        res->epochs_run = e + 1;
        res->last_train_loss = loss;
        if (r.n_val) {
            mml_confusion cm;
            mml_ctx_trim(ctx); /* validation has its own arena; the idle one gives its pages back */
            if ((rc = mml_confusion_init(&cm, n_classes)) != MML_OK) break;
            rc = mml_evaluate_classifier(m, x, y, r.val_rows, r.n_val, 256, &vloss, &cm, NULL);
            vacc = mml_metrics_compute(&cm, NULL).accuracy;
            mml_confusion_free(&cm);
            if (vloss < best_val) {
                best_val = vloss;
                res->best_epoch = e;
                res->best_val_loss = vloss;
                res->best_val_accuracy = vacc;
                snapshot(ps, best, false);
                since_best = 0;
            } else since_best++;
        }
        if (opt->log)
            fprintf(opt->log, "{\"epoch\": %d, \"train_loss\": %.6f, \"train_accuracy\": %.6f, \"val_loss\": %.6f, "
                    "\"val_accuracy\": %.6f, \"lr\": %.6g, \"seconds\": %.3f}\n", e + 1, loss, acc,
                    isnan(vloss) ? -1.0 : vloss, isnan(vacc) ? -1.0 : vacc,
                    mml_lr_at(&r.sched, r.optim.step ? r.optim.step - 1 : 0), mml_now() - te);
        if (opt->log) fflush(opt->log);
        if (opt->checkpoint) {
            state.epoch = e + 1;
            state.step = r.optim.step;
            state.best_val = best_val;
            state.since_best = since_best;
            state.best_epoch = res->best_epoch;
            if ((rc = mml_checkpoint_save(opt->checkpoint, &state)) != MML_OK) break;
        }
        if (opt->patience > 0 && r.n_val && since_best >= opt->patience) break;
    }
    res->train_seconds = mml_now() - t0;
    res->samples_per_second = res->train_seconds > 0 ? (double)r.n_train * res->epochs_run / res->train_seconds : 0;
    if (rc == MML_OK && best && res->best_epoch >= 0) snapshot(ps, best, true);
    mml_free(best);
    mml_free(r.train_rows);
    mml_free(r.base_rows);
    mml_ctx_free(ctx);
    return rc;
}
