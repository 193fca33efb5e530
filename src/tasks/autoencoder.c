/* The multimodal autoencoder: per-modality encoders into one latent (the
 * mean over the modalities given), per-modality decoders out of it; trained
 * to reconstruct every modality from any subset, used to impute missing ones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/autoencoder.h"
#include "mml/encoder.h"
#include "mml/model.h"
#include "mml/nn.h"
#include "mml/ops.h"
#include "mml/progress.h"
#include "mml/safetensors.h"
#include "tasks/fit.h"

struct mml_ae_model {
    mml_params *ps;
    int n;
    mml_modality mod[MML_MOD_COUNT];
    mml_encoder *enc[MML_MOD_COUNT];
    mml_nn_linear to_latent[MML_MOD_COUNT];
    mml_nn_mlp dec[MML_MOD_COUNT];
    int64_t numel[MML_MOD_COUNT]; /* features per sample */
    bool decoded[MML_MOD_COUNT];  /* float features have a decoder; token ids are only an input */
    int seq_axis[MML_MOD_COUNT];
    int64_t latent;
    mml_rng rng;
    const mml_mm_data *train_data; /* during mml_ae_train, for validation */
};

mml_params *mml_ae_model_params(mml_ae_model *m) { return m->ps; }

int mml_ae_model_modalities(const mml_ae_model *m, mml_modality *mods)
{
    memcpy(mods, m->mod, (size_t)m->n * sizeof *mods);
    return m->n;
}

void mml_ae_model_free(mml_ae_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n; i++) mml_encoder_free(m->enc[i]);
    mml_params_free(m->ps);
    mml_free(m);
}

static mml_status read_decoder(const mml_cfg_node *model, int64_t *hidden, int *n_hidden)
{
    mml_cfg_node dec;
    static const char *const keys[] = { "hidden", NULL };
    *n_hidden = 0;
    mml_status rc = mml_cfg_object(model, "decoder", false, &dec);
    if (rc != MML_OK || !mml_cfg_present(&dec)) return rc;
    if ((rc = mml_cfg_check_keys(&dec, keys)) != MML_OK) return rc;
    if ((*n_hidden = mml_cfg_ints(&dec, "hidden", hidden, MML_MLP_MAX_LAYERS - 2)) < 0) return mml_last_status();
    for (int k = 0; k < *n_hidden; k++)
        if (hidden[k] < 1) return mml_cfg_error(&dec, "hidden", "sizes must be positive");
    return MML_OK;
}

static mml_status build_modality(mml_ae_model *m, const mml_cfg_node *encs, const mml_cfg_node *e, mml_modality mo,
                                 const mml_mm_data *d, const int64_t *hidden, int n_hidden, uint64_t seed)
{
    const char *name = mml_modality_name(mo);
    const mml_feature_spec *spec = &d->fz.spec[mo];
    if (!spec->enabled) return mml_cfg_error(encs, name, "the data were opened without this modality");
    int i = m->n++;
    char prefix[64];
    m->mod[i] = mo;
    m->numel[i] = 1;
    m->seq_axis[i] = spec->seq_axis;
    for (int k = 0; k < spec->ndim; k++) m->numel[i] *= spec->shape[k];
    snprintf(prefix, sizeof prefix, "%s.", name);
    mml_status rc = mml_encoder_build(e, spec, m->ps, prefix, seed + 101u * (uint64_t)(mo + 1), &m->enc[i]);
    mml_rng r;
    mml_rng_seed(&r, seed + 31u * (uint64_t)(mo + 1));
    snprintf(prefix, sizeof prefix, "latent.%s", name);
    if (rc == MML_OK) rc = mml_nn_linear_init(&m->to_latent[i], m->ps, prefix, mml_encoder_dim(m->enc[i]), m->latent, true, &r);
    /* padded sequences are reconstructed whole, padding included */
    if (rc != MML_OK || !(m->decoded[i] = spec->dtype == MML_F32)) return rc;
    int64_t sizes[MML_MLP_MAX_LAYERS];
    sizes[0] = m->latent;
    memcpy(sizes + 1, hidden, (size_t)n_hidden * sizeof *hidden);
    sizes[n_hidden + 1] = m->numel[i];
    snprintf(prefix, sizeof prefix, "decoder.%s", name);
    if (rc == MML_OK) rc = mml_nn_mlp_init(&m->dec[i], m->ps, prefix, sizes, n_hidden + 2, MML_ACT_RELU, 0.0f, &r);
    return rc;
}

mml_status mml_ae_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed, mml_ae_model **out)
{
    static const char *const keys[] = { "encoders", "latent", "decoder", NULL };
    *out = NULL;
    mml_status rc = mml_cfg_check_keys(model, keys);
    if (rc != MML_OK) return rc;
    mml_ae_model *m = mml_calloc(1, sizeof *m);
    if (!m || !(m->ps = mml_params_create())) {
        mml_free(m);
        return MML_ERR_NOMEM;
    }
    mml_rng_seed(&m->rng, seed ^ 0x6165ULL);
    int64_t hidden[MML_MLP_MAX_LAYERS];
    int n_hidden = 0;
    mml_cfg_node encs, e;
    rc = mml_cfg_int(model, "latent", 64, &m->latent);
    if (rc == MML_OK) rc = mml_cfg_check_range(model, "latent", (double)m->latent, 1, 65536);
    if (rc == MML_OK) rc = read_decoder(model, hidden, &n_hidden);
    if (rc == MML_OK) rc = mml_cfg_object(model, "encoders", true, &encs);
    for (int mo = 0; rc == MML_OK && mo < MML_MOD_COUNT; mo++) {
        rc = mml_cfg_object(&encs, mml_modality_name((mml_modality)mo), false, &e);
        if (rc == MML_OK && mml_cfg_present(&e)) rc = build_modality(m, &encs, &e, (mml_modality)mo, d, hidden, n_hidden, seed);
    }
    if (rc != MML_OK) {
        mml_ae_model_free(m);
        return rc;
    }
    *out = m;
    return MML_OK;
}

/* ---- forward ---- */

/* The shared latent [B, L]: the mean of the latents of the modalities use[i]
 * (F32 [B], 1 or 0) marks for each sample; zero for a sample with none. */
static mml_tensor *shared_latent(mml_ctx *ctx, mml_ae_model *m, const mml_batch *b, mml_tensor *const *use)
{
    mml_tensor *sum = NULL, *count = NULL;
    int64_t B = b->size;
    for (int i = 0; i < m->n; i++) {
        mml_modality mo = m->mod[i];
        mml_encoding enc;
        if (mml_encoder_forward(ctx, m->enc[i], b->x[mo], b->length[mo], &enc) != MML_OK) return NULL;
        mml_tensor *w = mml_reshape(ctx, use[i], 2, (int64_t[]){ B, 1 });
        mml_tensor *z = mml_mul(ctx, mml_nn_linear_forward(ctx, &m->to_latent[i], enc.pooled), w);
        sum = sum ? mml_add(ctx, sum, z) : z;
        count = count ? mml_add(ctx, count, w) : w;
    }
    return mml_div(ctx, sum, mml_clamp(ctx, count, 1.0f, INFINITY));
}

/* Mean squared error per sample [B] of modality i's reconstruction from z. */
static mml_tensor *reconstruction_error(mml_ctx *ctx, mml_ae_model *m, int i, const mml_batch *b, mml_tensor *z)
{
    mml_tensor *x = mml_reshape(ctx, b->x[m->mod[i]], 2, (int64_t[]){ b->size, m->numel[i] });
    mml_tensor *diff = mml_sub(ctx, mml_nn_mlp_forward(ctx, &m->dec[i], z, &m->rng), x);
    return mml_mean(ctx, mml_mul(ctx, diff, diff), 1, false);
}

/* The mean over modalities of the error on the samples that have each. */
static mml_tensor *batch_loss(mml_ctx *ctx, mml_ae_model *m, const mml_batch *b, mml_tensor *const *use)
{
    mml_tensor *z = shared_latent(ctx, m, b, use), *loss = NULL;
    if (!z) return NULL;
    int targets = 0;
    for (int i = 0; i < m->n; i++) {
        if (!m->decoded[i]) continue;
        targets++;
        mml_tensor *present = b->present[m->mod[i]];
        double n = 0;
        for (int64_t s = 0; s < b->size; s++) n += mml_f32(present)[s] > 0;
        if (n == 0) continue;
        mml_tensor *err = reconstruction_error(ctx, m, i, b, z);
        mml_tensor *l = mml_mul_scalar(ctx, mml_sum(ctx, mml_mul(ctx, err, present), MML_AXIS_ALL, false), (float)(1.0 / n));
        loss = loss ? mml_add(ctx, loss, l) : l;
    }
    return loss ? mml_mul_scalar(ctx, loss, 1.0f / (float)targets) : NULL;
}

/* Each sample's input: a random non-empty subset of the modalities it has. */
static mml_status random_subsets(mml_ctx *ctx, mml_ae_model *m, const mml_batch *b, mml_tensor **use)
{
    for (int i = 0; i < m->n; i++)
        if (!(use[i] = mml_new(ctx, MML_F32, 1, &b->size))) return MML_ERR_NOMEM;
    for (int64_t s = 0; s < b->size; s++) {
        int have[MML_MOD_COUNT], k = 0;
        for (int i = 0; i < m->n; i++)
            if (mml_f32(b->present[m->mod[i]])[s] > 0) have[k++] = i;
        uint32_t pick = k ? 1u + mml_rng_below(&m->rng, (1u << k) - 1u) : 0; /* a non-empty bit set */
        for (int i = 0; i < m->n; i++) mml_f32(use[i])[s] = 0.0f;
        for (int j = 0; j < k; j++) mml_f32(use[have[j]])[s] = (pick >> j) & 1u ? 1.0f : 0.0f;
    }
    return MML_OK;
}

/* ---- training ---- */

static mml_tensor *train_loss(mml_ctx *ctx, void *user, const mml_batch *b, const int64_t *rows)
{
    mml_ae_model *m = user;
    mml_tensor *use[MML_MOD_COUNT];
    (void)rows;
    return random_subsets(ctx, m, b, use) == MML_OK ? batch_loss(ctx, m, b, use) : NULL;
}

static double val_loss(mml_ae_model *m, const mml_mm_data *d)
{
    mml_ae_eval ev;
    if (!d->ds[MML_SPLIT_VAL] || mml_ae_evaluate(m, d, MML_SPLIT_VAL, &ev) != MML_OK) return NAN;
    double s = 0;
    int k = 0;
    for (int i = 0; i < m->n; i++)
        if (m->decoded[i]) s += ev.mse[MML_MOD_COUNT][m->mod[i]], k++;
    return s / k;
}

static double validate(void *user) { return val_loss(user, ((mml_ae_model *)user)->train_data); }

mml_status mml_ae_train(mml_ae_model *m, const mml_mm_data *d, const mml_train_options *o, mml_ae_history *h)
{
    memset(h, 0, sizeof *h);
    m->train_data = d;
    fit_task t = { .ps = m->ps, .ds = d->ds[MML_SPLIT_TRAIN], .n = d->ds[MML_SPLIT_TRAIN]->n, .loss = train_loss,
                   .validate = validate, .val_name = "val_loss", .user = m };
    fit_result res;
    mml_status rc = fit_run(&t, o, h->train_loss, h->val_loss, (int)(sizeof h->train_loss / sizeof h->train_loss[0]), &res);
    h->epochs = res.epochs;
    h->train_seconds = res.seconds;
    m->train_data = NULL;
    return rc;
}

/* ---- evaluation and imputation ---- */

/* Training-split mean of modality i's features, per feature (scratch: a row). */
static float *feature_mean(const mml_ae_model *m, int i, const mml_dataset *ds, float *scratch)
{
    int64_t F = m->numel[i], n = 0;
    double *acc = mml_calloc((size_t)F, sizeof *acc);
    float *mean = mml_malloc((size_t)F * sizeof *mean);
    if (!acc || !mean) {
        mml_free(acc);
        mml_free(mean);
        return NULL;
    }
    for (int64_t r = 0; r < ds->n; r++) {
        if (!ds->present[m->mod[i]][r]) continue;
        const float *x = mml_dataset_row_f32(ds, m->mod[i], r, scratch);
        for (int64_t f = 0; f < F; f++) acc[f] += x[f];
        n++;
    }
    for (int64_t f = 0; f < F; f++) mean[f] = n ? (float)(acc[f] / (double)n) : 0.0f;
    mml_free(acc);
    return mean;
}

static double baseline(const mml_ae_model *m, int i, const mml_dataset *train, const mml_dataset *ds)
{
    int64_t F = m->numel[i], n = 0;
    float *scratch = mml_malloc((size_t)F * sizeof *scratch), *mean = scratch ? feature_mean(m, i, train, scratch) : NULL;
    double err = 0;
    for (int64_t r = 0; mean && r < ds->n; r++) {
        if (!ds->present[m->mod[i]][r]) continue;
        const float *x = mml_dataset_row_f32(ds, m->mod[i], r, scratch);
        for (int64_t f = 0; f < F; f++) err += (double)(x[f] - mean[f]) * (x[f] - mean[f]);
        n += F;
    }
    mml_free(scratch);
    mml_free(mean);
    return n ? err / (double)n : NAN;
}

/* Errors of every modality from input set `from` (a model index, or -1: all) over the split. */
static mml_status errors_from(mml_ae_model *m, mml_ctx *ctx, const mml_dataset *ds, int from, double *mse)
{
    double sum[MML_MOD_COUNT] = { 0 }, cnt[MML_MOD_COUNT] = { 0 };
    int64_t rows[256];
    for (int64_t s = 0; s < ds->n; s += 256) {
        int64_t nb = s + 256 <= ds->n ? 256 : ds->n - s;
        for (int64_t k = 0; k < nb; k++) rows[k] = s + k;
        mml_ctx_reset(ctx);
        mml_batch b;
        mml_tensor *use[MML_MOD_COUNT];
        mml_status rc = mml_dataset_batch(ctx, ds, rows, nb, &b);
        if (rc != MML_OK) return rc;
        for (int i = 0; i < m->n; i++) /* a sample counts only if it has the input modality */
            use[i] = from < 0 || from == i ? b.present[m->mod[i]] : mml_zeros(ctx, MML_F32, 1, &nb);
        mml_tensor *z = shared_latent(ctx, m, &b, use);
        for (int i = 0; z && i < m->n; i++) {
            if (!m->decoded[i]) continue;
            mml_tensor *err = reconstruction_error(ctx, m, i, &b, z);
            if (!err) return mml_last_status();
            for (int64_t k = 0; k < nb; k++) {
                bool has_in = from < 0 || mml_f32(b.present[m->mod[from]])[k] > 0;
                if (!has_in || mml_f32(b.present[m->mod[i]])[k] == 0) continue;
                sum[i] += mml_f32(err)[k];
                cnt[i]++;
            }
        }
        if (!z) return mml_last_status();
    }
    for (int i = 0; i < m->n; i++) mse[m->mod[i]] = m->decoded[i] && cnt[i] ? sum[i] / cnt[i] : NAN;
    return MML_OK;
}

mml_status mml_ae_evaluate(mml_ae_model *m, const mml_mm_data *d, mml_data_split split, mml_ae_eval *out)
{
    const mml_dataset *ds = d->ds[split];
    if (!ds) return mml_error(MML_ERR_ARG, "autoencoder: the data have no such split");
    for (int a = 0; a <= MML_MOD_COUNT; a++)
        for (int o = 0; o < MML_MOD_COUNT; o++) out->mse[a][o] = NAN;
    for (int o = 0; o < MML_MOD_COUNT; o++) out->baseline[o] = NAN;
    mml_ctx *ctx = mml_ctx_create();
    if (!ctx) return MML_ERR_NOMEM;
    mml_set_grad_enabled(ctx, false);
    mml_set_training(ctx, false);
    mml_status rc = errors_from(m, ctx, ds, -1, out->mse[MML_MOD_COUNT]);
    for (int i = 0; rc == MML_OK && i < m->n; i++) {
        rc = errors_from(m, ctx, ds, i, out->mse[m->mod[i]]);
        if (m->decoded[i]) out->baseline[m->mod[i]] = baseline(m, i, d->ds[MML_SPLIT_TRAIN], ds);
    }
    mml_ctx_free(ctx);
    return rc;
}

mml_status mml_ae_impute(mml_ae_model *m, mml_ctx *ctx, const mml_batch *b)
{
    bool missing = false;
    for (int i = 0; i < m->n; i++)
        for (int64_t s = 0; m->decoded[i] && s < b->size; s++) missing |= mml_f32(b->present[m->mod[i]])[s] == 0;
    if (!missing) return MML_OK;
    bool grad = mml_set_grad_enabled(ctx, false);
    mml_tensor *use[MML_MOD_COUNT];
    for (int i = 0; i < m->n; i++) use[i] = b->present[m->mod[i]];
    mml_tensor *z = shared_latent(ctx, m, b, use);
    mml_status rc = z ? MML_OK : mml_last_status();
    for (int i = 0; rc == MML_OK && i < m->n; i++) {
        if (!m->decoded[i]) continue;
        mml_modality mo = m->mod[i];
        mml_tensor *r = mml_nn_mlp_forward(ctx, &m->dec[i], z, &m->rng);
        if (!r) {
            rc = mml_last_status();
            break;
        }
        for (int64_t s = 0; s < b->size; s++) {
            bool has_any = false;
            for (int j = 0; j < m->n; j++) has_any |= mml_f32(use[j])[s] > 0;
            if (mml_f32(b->present[mo])[s] > 0 || !has_any) continue;
            memcpy(mml_f32(b->x[mo]) + s * m->numel[i], mml_f32(r) + s * m->numel[i], (size_t)m->numel[i] * sizeof(float));
            if (b->length[mo]) mml_i32(b->length[mo])[s] = (int32_t)b->x[mo]->shape[1 + m->seq_axis[i]];
        }
    }
    /* marked present only now: every reconstruction came from the real modalities */
    for (int i = 0; rc == MML_OK && i < m->n; i++)
        for (int64_t s = 0; m->decoded[i] && s < b->size; s++) {
            bool has_any = false;
            for (int j = 0; j < m->n; j++) has_any |= mml_f32(use[j])[s] > 0;
            if (has_any) mml_f32(b->present[m->mod[i]])[s] = 1.0f;
        }
    mml_set_grad_enabled(ctx, grad);
    return rc;
}

mml_status mml_ae_generate(mml_ae_model *m, mml_ctx *ctx, const mml_batch *b, mml_modality from, mml_modality target,
                           float *out)
{
    int src = -1, dst = -1;
    for (int i = 0; i < m->n; i++) {
        if (m->mod[i] == from) src = i;
        if (m->mod[i] == target && m->decoded[i]) dst = i;
    }
    if (src < 0) return mml_error(MML_ERR_ARG, "generate: the autoencoder has no %s encoder", mml_modality_name(from));
    if (dst < 0) return mml_error(MML_ERR_ARG, "generate: the autoencoder has no %s decoder", mml_modality_name(target));
    bool grad = mml_set_grad_enabled(ctx, false);
    mml_tensor *use[MML_MOD_COUNT];
    for (int i = 0; i < m->n; i++) use[i] = i == src ? b->present[from] : mml_zeros(ctx, MML_F32, 1, &b->size);
    mml_tensor *z = shared_latent(ctx, m, b, use), *r = z ? mml_nn_mlp_forward(ctx, &m->dec[dst], z, &m->rng) : NULL;
    mml_set_grad_enabled(ctx, grad);
    if (!r) return mml_last_status();
    memcpy(out, mml_f32(r), (size_t)r->numel * sizeof *out);
    return MML_OK;
}

/* ---- files ---- */

mml_status mml_ae_model_save(mml_ae_model *m, const char *path, const char *config_json, const char *classes_json)
{
    return mml_params_save_model(m->ps, path, "mml-ae-1", config_json, classes_json);
}

static mml_status check_features(const mml_mm_data *mine, const mml_mm_data *theirs, const char *path, const bool *mods)
{
    for (int mo = 0; mo < MML_MOD_COUNT; mo++) {
        if (!mods[mo]) continue;
        const mml_feature_spec *a = &mine->fz.spec[mo], *b = &theirs->fz.spec[mo];
        bool same = b->enabled && a->ndim == b->ndim && a->dtype == b->dtype;
        for (int k = 0; same && k < a->ndim; k++) same = a->shape[k] == b->shape[k];
        if (!same)
            return mml_error(MML_ERR_ARG, "%s: the autoencoder's %s features are not shaped as the data's: check the "
                             "\"data\" settings of both configs", path, mml_modality_name((mml_modality)mo));
    }
    return MML_OK;
}

/* The model in path with its config's featurizer in own; built for d (whose
 * features must match) or, when d is NULL, for own. */
static mml_status load(const char *path, const mml_mm_data *d, mml_mm_data *own, mml_ae_model **out)
{
    mml_safetensors *st = NULL;
    mml_config *cfg = NULL;
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, false, NULL };
    mml_cfg_node root, data, model;
    bool mods[MML_MOD_COUNT];
    *out = NULL;
    memset(own, 0, sizeof *own);
    mml_status rc = mml_safetensors_map(path, &st);
    const char *format = st ? mml_safetensors_meta(st, "mml.format") : NULL, *text = st ? mml_safetensors_meta(st, "mml.config") : NULL;
    if (rc == MML_OK && (!format || strcmp(format, "mml-ae-1") || !text))
        rc = mml_error(MML_ERR_FORMAT, "%s: not a multimodal autoencoder (\"task\": \"autoencoder\")", path);
    if (rc == MML_OK) rc = mml_config_parse(text, path, &cfg);
    if (rc == MML_OK) root = mml_config_root(cfg);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "data", true, &data);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "model", true, &model);
    if (rc == MML_OK) rc = mml_mm_modalities(&model, mods);
    if (rc == MML_OK) rc = mml_mm_data_open_features(&data, "", mods, &opt, own);
    if (rc == MML_OK && d) rc = check_features(own, d, path, mods);
    if (rc == MML_OK) rc = mml_ae_model_build(&model, d ? d : own, 0, out);
    if (rc == MML_OK) rc = mml_params_load((*out)->ps, st, path);
    if (rc != MML_OK) {
        mml_ae_model_free(*out);
        *out = NULL;
    }
    mml_config_free(cfg);
    mml_safetensors_free(st);
    return rc;
}

mml_status mml_ae_model_load(const char *path, const mml_mm_data *d, mml_ae_model **out)
{
    mml_mm_data own;
    mml_status rc = load(path, d, &own, out);
    mml_mm_data_close(&own);
    return rc;
}

mml_status mml_ae_model_open(const char *path, mml_ae_model **out, mml_mm_data *d)
{
    mml_status rc = load(path, NULL, d, out);
    if (rc != MML_OK) mml_mm_data_close(d);
    return rc;
}
