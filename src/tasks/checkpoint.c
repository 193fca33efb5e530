/* Training checkpoints: everything a run needs to continue bit-identically:
 * parameters and buffers, used optimizer state slots, the optimizer's step,
 * the shuffle and dropout generators, the epoch, and the early-stopping state
 * with its best weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/safetensors.h"
#include "tasks/checkpoint.h"

static mml_status add_rng(mml_st_writer *w, const char *name, const mml_rng *r)
{
    return mml_st_writer_add_raw(w, name, MML_I64, 1, (int64_t[]){ 4 }, r->s);
}

mml_status mml_checkpoint_save(const char *path, const mml_train_state *s)
{
    mml_st_writer *w = mml_st_writer_create();
    if (!w) return MML_ERR_NOMEM;
    mml_params *ps = s->params;
    char name[512], num[64];
    mml_status rc = MML_OK;
    for (int i = 0; rc == MML_OK && i < mml_params_count(ps); i++) {
        const mml_tensor *t = mml_params_at(ps, i);
        snprintf(name, sizeof name, "param.%s", t->name);
        rc = mml_st_writer_add(w, name, t, MML_F32);
        for (int slot = 0; rc == MML_OK && slot < MML_PARAM_STATE_SLOTS; slot++) {
            const float *st = mml_params_state_if_used(ps, i, slot);
            snprintf(name, sizeof name, "state%d.%s", slot, t->name);
            if (st) rc = mml_st_writer_add_raw(w, name, MML_F32, t->ndim, t->shape, st);
        }
    }
    if (rc == MML_OK) rc = add_rng(w, "rng.shuffle", s->shuffle_rng);
    if (rc == MML_OK) rc = add_rng(w, "rng.model", s->model_rng);
    if (rc == MML_OK && s->best && s->best_numel)
        rc = mml_st_writer_add_raw(w, "best", MML_F32, 1, &s->best_numel, s->best);
    struct { const char *key; double v; } scalars[] = {
        { "epoch", s->epoch }, { "step", (double)s->step }, { "best_val", s->best_val },
        { "since_best", s->since_best }, { "best_epoch", s->best_epoch },
    };
    for (size_t k = 0; rc == MML_OK && k < sizeof scalars / sizeof scalars[0]; k++) {
        snprintf(num, sizeof num, "%.17g", scalars[k].v);
        rc = mml_st_writer_meta(w, scalars[k].key, num);
    }
    if (rc == MML_OK) rc = mml_st_writer_meta(w, "mml.format", "mml-checkpoint-1");
    if (rc == MML_OK) rc = mml_st_writer_save(w, path);
    mml_st_writer_free(w);
    return rc;
}

static mml_status read_rng(const mml_safetensors *st, const char *name, mml_rng *r, const char *path)
{
    const mml_st_entry *e = mml_safetensors_find(st, name);
    if (!e || e->dtype != MML_I64 || e->nbytes != sizeof r->s)
        return mml_error(MML_ERR_FORMAT, "%s: checkpoint lacks a valid %s", path, name);
    memcpy(r->s, e->data, sizeof r->s);
    return MML_OK;
}

static mml_status read_scalar(const mml_safetensors *st, const char *key, double *out, const char *path)
{
    const char *v = mml_safetensors_meta(st, key);
    char *end;
    if (!v) return mml_error(MML_ERR_FORMAT, "%s: checkpoint lacks '%s'", path, key);
    *out = strtod(v, &end);
    if (end == v || *end) return mml_error(MML_ERR_FORMAT, "%s: checkpoint field '%s' is not a number", path, key);
    return MML_OK;
}

mml_status mml_checkpoint_load(const char *path, mml_train_state *s)
{
    mml_safetensors *st;
    mml_status rc = mml_safetensors_map(path, &st);
    if (rc != MML_OK) return rc;
    const char *fmt = mml_safetensors_meta(st, "mml.format");
    if (!fmt || strcmp(fmt, "mml-checkpoint-1") != 0)
        rc = mml_error(MML_ERR_FORMAT, "%s: not an mml training checkpoint", path);
    char name[512];
    mml_params *ps = s->params;
    for (int i = 0; rc == MML_OK && i < mml_params_count(ps); i++) {
        mml_tensor *t = mml_params_at(ps, i);
        snprintf(name, sizeof name, "param.%s", t->name);
        rc = mml_safetensors_read_into(st, name, t);
        for (int slot = 0; rc == MML_OK && slot < MML_PARAM_STATE_SLOTS; slot++) {
            snprintf(name, sizeof name, "state%d.%s", slot, t->name);
            const mml_st_entry *e = mml_safetensors_find(st, name);
            if (!e) continue;
            float *dst = mml_params_state(ps, i, slot);
            if (!dst || e->dtype != MML_F32 || e->nbytes != (size_t)t->numel * sizeof(float))
                rc = mml_error(MML_ERR_FORMAT, "%s: optimizer state %s does not fit its parameter", path, name);
            else memcpy(dst, e->data, e->nbytes);
        }
    }
    if (rc == MML_OK) rc = read_rng(st, "rng.shuffle", s->shuffle_rng, path);
    if (rc == MML_OK) rc = read_rng(st, "rng.model", s->model_rng, path);
    double epoch = 0, step = 0, since = 0, best_epoch = -1;
    if (rc == MML_OK) rc = read_scalar(st, "epoch", &epoch, path);
    if (rc == MML_OK) rc = read_scalar(st, "step", &step, path);
    if (rc == MML_OK) rc = read_scalar(st, "best_val", &s->best_val, path);
    if (rc == MML_OK) rc = read_scalar(st, "since_best", &since, path);
    if (rc == MML_OK) rc = read_scalar(st, "best_epoch", &best_epoch, path);
    const mml_st_entry *best = rc == MML_OK ? mml_safetensors_find(st, "best") : NULL;
    if (best && s->best && best->nbytes == (size_t)s->best_numel * sizeof(float)) memcpy(s->best, best->data, best->nbytes);
    else if (rc == MML_OK && s->best && best_epoch >= 0)
        rc = mml_error(MML_ERR_FORMAT, "%s: checkpoint's best weights do not fit the model", path);
    s->epoch = (int)epoch;
    s->step = (int64_t)step;
    s->since_best = (int)since;
    s->best_epoch = (int)best_epoch;
    mml_safetensors_free(st);
    return rc;
}
