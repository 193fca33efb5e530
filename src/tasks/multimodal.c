/* The multimodal classification task: data from manifests, encoders, fusion,
 * head; training with modality dropout; evaluation under perturbations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/autoencoder.h"
#include "mml/loss.h"
#include "mml/model.h"
#include "mml/multimodal.h"
#include "mml/nn.h"
#include "mml/ops.h"
#include "mml/progress.h"
#include "mml/safetensors.h"
#include "tasks/fit.h"

/* ---- data ---- */

static const char *const g_split_keys[MML_SPLIT_COUNT] = { "train", "val", "test" };

static void resolve(char *buf, size_t cap, const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !dir[0]) snprintf(buf, cap, "%s", path);
    else snprintf(buf, cap, "%s/%s", dir, path);
}

static mml_status read_image_cfg(const mml_cfg_node *data, mml_mm_data *d)
{
    mml_feature_config *c = &d->fc;
    mml_cfg_node n, tr;
    int64_t ch, h, w;
    double mean, std;
    int interp;
    static const char *const interps[] = { "bilinear", "bicubic", NULL };
    static const char *const keys[] = { "channels", "height", "width", "mean", "std", "interpolation", "transforms", NULL };
    mml_status rc = mml_cfg_object(data, "image", false, &n);
    if (rc != MML_OK || !mml_cfg_present(&n)) return rc;
    if ((rc = mml_cfg_check_keys(&n, keys)) != MML_OK) return rc;
    if (rc == MML_OK) rc = mml_cfg_int(&n, "channels", c->channels, &ch);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "height", c->height, &h);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "width", c->width, &w);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "mean", c->mean, &mean);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "std", c->std, &std);
    if (rc == MML_OK) rc = mml_cfg_choice(&n, "interpolation", interps, MML_INTERP_BILINEAR, &interp);
    if (rc == MML_OK) rc = mml_cfg_array(&n, "transforms", false, &tr);
    if (rc == MML_OK && mml_cfg_present(&tr)) rc = mml_transforms_parse(&tr, &d->transforms);
    if (rc != MML_OK) return rc;
    c->interp = (mml_interp)interp;
    c->transforms = d->transforms;
    if (ch != 1 && ch != 3) return mml_cfg_error(&n, "channels", "must be 1 or 3");
    if (h < 1 || w < 1 || h > 4096 || w > 4096) return mml_cfg_error(&n, "height", "height and width must be in [1, 4096]");
    if (!(std > 0)) return mml_cfg_error(&n, "std", "must be positive");
    c->channels = (int)ch, c->height = (int)h, c->width = (int)w, c->mean = (float)mean, c->std = (float)std;
    return MML_OK;
}

static mml_status read_audio_cfg(const mml_cfg_node *data, mml_feature_config *c)
{
    mml_cfg_node n;
    int64_t rate, frames, mels, fft, hop;
    double fmin, fmax;
    bool norm;
    static const char *const keys[] = { "rate", "frames", "n_mels", "n_fft", "hop", "f_min", "f_max", "normalize", NULL };
    mml_status rc = mml_cfg_object(data, "audio", false, &n);
    if (rc != MML_OK || !mml_cfg_present(&n)) return rc;
    if ((rc = mml_cfg_check_keys(&n, keys)) != MML_OK) return rc;
    if (rc == MML_OK) rc = mml_cfg_int(&n, "rate", c->rate, &rate);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "frames", c->frames, &frames);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "n_mels", c->spec.n_mels, &mels);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "n_fft", c->spec.n_fft, &fft);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "hop", c->spec.hop_length, &hop);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "f_min", c->spec.f_min, &fmin);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "f_max", rate / 2.0, &fmax);
    if (rc == MML_OK) rc = mml_cfg_bool(&n, "normalize", c->utterance_norm, &norm);
    if (rc != MML_OK) return rc;
    if (rate < 1000 || rate > 192000) return mml_cfg_error(&n, "rate", "must be in [1000, 192000]");
    if (frames < 1 || frames > 100000) return mml_cfg_error(&n, "frames", "must be in [1, 100000]");
    if (fft < 16 || fft > 65536 || hop < 1 || hop > fft) return mml_cfg_error(&n, "n_fft", "n_fft in [16, 65536] and hop in [1, n_fft]");
    if (mels < 1 || mels > fft / 2 + 1) return mml_cfg_error(&n, "n_mels", "must be in [1, n_fft / 2 + 1]");
    if (!(fmin >= 0 && fmax > fmin && fmax <= rate / 2.0)) return mml_cfg_error(&n, "f_max", "needs 0 <= f_min < f_max <= rate / 2");
    c->rate = (int)rate, c->frames = (int)frames;
    c->spec = mml_spec_defaults((int)rate);
    c->spec.n_fft = c->spec.win_length = (int)fft;
    c->spec.hop_length = (int)hop;
    c->spec.n_mels = (int)mels;
    c->spec.f_min = (float)fmin, c->spec.f_max = (float)fmax;
    c->utterance_norm = norm;
    return MML_OK;
}

static mml_status read_text_cfg(const mml_cfg_node *data, const char *dir, const mml_mm_data_options *opt,
                                mml_mm_data *d, bool load)
{
    mml_cfg_node n;
    const char *bpe = NULL;
    int64_t context = d->fc.context;
    static const char *const keys[] = { "bpe", "context", NULL };
    char path[1024];
    mml_status rc = mml_cfg_object(data, "text", false, &n);
    if (rc == MML_OK && mml_cfg_present(&n)) {
        if ((rc = mml_cfg_check_keys(&n, keys)) == MML_OK) rc = mml_cfg_string(&n, "bpe", NULL, &bpe);
        if (rc == MML_OK) rc = mml_cfg_int(&n, "context", context, &context);
        if (rc == MML_OK && (context < 2 || context > 4096)) rc = mml_cfg_error(&n, "context", "must be in [2, 4096]");
    }
    if (rc != MML_OK || !load) return rc;
    d->fc.context = (int)context;
    if (bpe) resolve(path, sizeof path, dir, bpe);
    else {
        const char *env = getenv("MML_DATASETS");
        const char *root = opt->datasets_dir ? opt->datasets_dir : env ? env : "../shared/datasets";
        snprintf(path, sizeof path, "%s/clip-bpe/bpe_simple_vocab_16e6.txt.gz", root);
    }
    return mml_bpe_load_clip(path, &d->bpe);
}

static mml_status set_task_fields(mml_mm_data *d, const mml_mm_data_options *opt, const char *label)
{
    for (int t = 0; t < opt->n_task_fields; t++) {
        const char *f = opt->task_fields[t];
        if (t >= MML_MM_MAX_TASKS) return mml_error(MML_ERR_ARG, "at most %d extra tasks", MML_MM_MAX_TASKS);
        if (!strcmp(f, label) || strlen(f) >= sizeof d->tasks[t].field)
            return mml_error(MML_ERR_ARG, "task label '%s': must be another field than the main label, under 64 bytes", f);
        snprintf(d->tasks[t].field, sizeof d->tasks[t].field, "%s", f);
        d->n_tasks = t + 1;
    }
    return MML_OK;
}

int mml_mm_data_task(const mml_mm_data *d, const char *field)
{
    for (int t = 0; t < d->n_tasks; t++)
        if (!strcmp(d->tasks[t].field, field)) return t;
    return -1;
}

int mml_mm_task_fields(const mml_cfg_node *model, const char **fields, int n, int cap)
{
    mml_cfg_node list;
    if (mml_cfg_array(model, "tasks", false, &list) != MML_OK) return -1;
    for (int t = 0; t < mml_cfg_len(&list); t++) {
        mml_cfg_node it = mml_cfg_at(&list, t);
        const char *f = NULL;
        if (!mml_cfg_present(&it) || mml_cfg_string_req(&it, "label", &f) != MML_OK) return -1;
        bool seen = false;
        for (int k = 0; k < n; k++) seen |= !strcmp(fields[k], f);
        if (seen) continue;
        if (n == cap) {
            mml_cfg_error(model, "tasks", "at most %d extra tasks over the models that share the data", cap);
            return -1;
        }
        fields[n++] = f;
    }
    return n;
}

/* Labels of the extra tasks for the samples each split kept. */
static mml_status task_labels(mml_mm_data *d)
{
    for (int t = 0; t < d->n_tasks; t++) {
        mml_mm_task *k = &d->tasks[t];
        k->n_classes = mml_manifest_classes(d->manifest[MML_SPLIT_TRAIN], k->field, &k->classes);
        if (k->n_classes < 0) return mml_last_status();
        for (int s = 0; s < MML_SPLIT_COUNT; s++) {
            const mml_dataset *ds = d->ds[s];
            if (!ds) continue;
            if (!(k->label[s] = mml_malloc((size_t)ds->n * sizeof(int32_t) + 1))) return MML_ERR_NOMEM;
            for (int64_t i = 0; i < ds->n; i++) {
                int c = mml_manifest_class_of(d->manifest[s], &d->manifest[s]->samples[ds->source_row[i]], k->field,
                                              k->classes, k->n_classes);
                if (c < 0) return mml_last_status();
                k->label[s][i] = c;
            }
        }
    }
    return MML_OK;
}

static mml_status feature_std(mml_mm_data *d)
{
    const mml_dataset *ds = d->ds[MML_SPLIT_TRAIN];
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        d->feat_std[m] = 1.0f;
        if (!ds->spec[m].enabled || ds->spec[m].dtype != MML_F32) continue;
        double s = 0, s2 = 0;
        int64_t k = 0, w = ds->row_numel[m];
        float *scratch = mml_malloc((size_t)w * sizeof *scratch);
        if (!scratch) return MML_ERR_NOMEM;
        for (int64_t i = 0; i < ds->n; i++) {
            if (!ds->present[m][i]) continue;
            const float *row = mml_dataset_row_f32(ds, (mml_modality)m, i, scratch);
            for (int64_t j = 0; j < w; j++) s += row[j], s2 += (double)row[j] * row[j];
            k += w;
        }
        mml_free(scratch);
        if (k > 1) d->feat_std[m] = (float)sqrt(fmax(s2 / (double)k - (s / (double)k) * (s / (double)k), 1e-12));
    }
    return MML_OK;
}

static mml_status open_split(mml_mm_data *d, const mml_cfg_node *data, const char *dir, int split,
                             const mml_mm_data_options *opt, const char *label, const char *cache)
{
    const char *file = NULL;
    char path[1024];
    mml_status rc = split == MML_SPLIT_VAL ? mml_cfg_string(data, "val", NULL, &file)
                                           : mml_cfg_string_req(data, g_split_keys[split], &file);
    if (rc != MML_OK || !file) return rc;
    resolve(path, sizeof path, dir, file);
    if ((rc = mml_manifest_load(path, &d->manifest[split])) != MML_OK) return rc;
    if (split == MML_SPLIT_TRAIN) {
        d->n_classes = mml_manifest_classes(d->manifest[split], label, &d->classes);
        if (d->n_classes < 0) return mml_last_status();
        if (d->n_classes < 2) return mml_error(MML_ERR_FORMAT, "%s: needs at least 2 classes of '%s'", path, label);
    }
    mml_dataset_options o = mml_dataset_options_default();
    o.label_field = label;
    o.classes = d->classes;
    o.n_classes = d->n_classes;
    o.on_error = opt->on_error;
    o.cache_dir = cache;
    o.progress = opt->progress;
    rc = mml_dataset_build(d->manifest[split], &d->fz, &o, &d->ds[split]);
    if (rc == MML_OK) {
        d->n_skipped += d->ds[split]->n_skipped;
        if (d->ds[split]->n == 0) rc = mml_error(MML_ERR_FORMAT, "%s: no usable samples", path);
    }
    return rc;
}

mml_status mml_mm_data_open_features(const mml_cfg_node *data, const char *dir, const bool *mods,
                                     const mml_mm_data_options *opt, mml_mm_data *d)
{
    static const char *const keys[] = { "train", "val", "test", "label", "cache", "image", "audio", "text", NULL };
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", dir ? dir : "");
    d->fc = mml_feature_defaults();
    d->fc.image = mods[MML_MOD_IMAGE], d->fc.audio = mods[MML_MOD_AUDIO], d->fc.text = mods[MML_MOD_TEXT];
    const char *label = "label";
    mml_status rc = mml_cfg_check_keys(data, keys);
    if (rc == MML_OK) rc = mml_cfg_string(data, "label", "label", &label);
    if (rc == MML_OK) rc = set_task_fields(d, opt, label);
    if (rc == MML_OK) rc = read_image_cfg(data, d);
    if (rc == MML_OK) rc = read_audio_cfg(data, &d->fc);
    if (rc == MML_OK) rc = read_text_cfg(data, dir, opt, d, d->fc.text);
    d->fc.bpe = d->bpe;
    if (rc == MML_OK) rc = mml_featurizer_init(&d->fz, &d->fc, d->params, sizeof d->params);
    if (rc != MML_OK) mml_mm_data_close(d);
    return rc;
}

mml_status mml_mm_data_open(const mml_cfg_node *data, const char *dir, const bool *mods,
                            const mml_mm_data_options *opt, mml_mm_data *d)
{
    const char *label = "label", *cache = NULL;
    char cache_path[1024];
    mml_status rc = mml_mm_data_open_features(data, dir, mods, opt, d);
    if (rc != MML_OK) return rc;
    rc = mml_cfg_string(data, "label", "label", &label);
    if (rc == MML_OK) rc = mml_cfg_string(data, "cache", NULL, &cache);
    if (cache) resolve(cache_path, sizeof cache_path, dir, cache);
    for (int s = 0; rc == MML_OK && s < MML_SPLIT_COUNT; s++)
        rc = open_split(d, data, dir, s, opt, label, cache ? cache_path : NULL);
    if (rc == MML_OK) rc = task_labels(d);
    if (rc == MML_OK) rc = feature_std(d);
    if (rc != MML_OK) mml_mm_data_close(d);
    return rc;
}

mml_status mml_mm_data_features_of(const mml_mm_data *d, const mml_manifest *m, const mml_mm_data_options *opt,
                                   mml_dataset **out)
{
    mml_dataset_options o = mml_dataset_options_default();
    o.label_field = NULL;
    o.on_error = opt->on_error;
    o.progress = opt->progress;
    mml_status rc = mml_dataset_build(m, &d->fz, &o, out);
    if (rc == MML_OK && (*out)->n == 0) {
        mml_dataset_free(*out);
        *out = NULL;
        rc = mml_error(MML_ERR_FORMAT, "%s: no usable samples", m->path);
    }
    return rc;
}

void mml_mm_data_close(mml_mm_data *d)
{
    for (int s = 0; s < MML_SPLIT_COUNT; s++) {
        mml_dataset_free(d->ds[s]);
        mml_manifest_free(d->manifest[s]);
    }
    if (d->classes) mml_classes_free(d->classes, d->n_classes);
    for (int t = 0; t < d->n_tasks; t++) {
        if (d->tasks[t].classes) mml_classes_free(d->tasks[t].classes, d->tasks[t].n_classes);
        for (int s = 0; s < MML_SPLIT_COUNT; s++) mml_free(d->tasks[t].label[s]);
    }
    mml_bpe_free(d->bpe);
    mml_transforms_free(d->transforms);
    memset(d, 0, sizeof *d);
}

mml_status mml_mm_modalities(const mml_cfg_node *model, bool *mods)
{
    mml_cfg_node enc;
    memset(mods, 0, MML_MOD_COUNT * sizeof *mods);
    mml_status rc = mml_cfg_object(model, "encoders", true, &enc);
    if (rc != MML_OK) return rc;
    int k = 0;
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        mml_cfg_node e;
        if ((rc = mml_cfg_object(&enc, mml_modality_name((mml_modality)m), false, &e)) != MML_OK) return rc;
        k += mods[m] = mml_cfg_present(&e);
    }
    static const char *const keys[] = { "image", "audio", "text", NULL };
    if ((rc = mml_cfg_check_keys(&enc, keys)) != MML_OK) return rc;
    return k ? MML_OK : mml_cfg_error(model, "encoders", "needs at least one of image, audio, text");
}

/* ---- model ---- */

struct mml_mm_model {
    mml_params *ps;
    int n;
    mml_modality mod[MML_MOD_COUNT];
    mml_encoder *enc[MML_MOD_COUNT];
    mml_fusion *fusion;
    mml_nn_mlp head, task_head[MML_MM_MAX_TASKS];
    int n_tasks;
    int task_index[MML_MM_MAX_TASKS]; /* into the data's tasks */
    float task_weight[MML_MM_MAX_TASKS];
    int n_classes;
    mml_rng rng;
    mml_ctx *eval_ctx; /* kept between evaluations (trimmed): its arena is already the right size */
    mml_mm_augment aug;
    mml_ae_model *imputer; /* "impute": fills missing modalities at test time */
};

mml_params *mml_mm_model_params(mml_mm_model *m) { return m->ps; }
const char *mml_mm_model_fusion(const mml_mm_model *m) { return m->n > 1 ? mml_fusion_type(m->fusion) : "none"; }

int mml_mm_model_modalities(const mml_mm_model *m, mml_modality *mods)
{
    memcpy(mods, m->mod, (size_t)m->n * sizeof *mods);
    return m->n;
}

void mml_mm_model_free(mml_mm_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n; i++) mml_encoder_free(m->enc[i]);
    mml_fusion_free(m->fusion);
    mml_ae_model_free(m->imputer);
    mml_ctx_free(m->eval_ctx);
    mml_params_free(m->ps);
    mml_free(m);
}

static mml_status build_encoders(mml_mm_model *m, const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed,
                                 mml_fusion_shape *shape)
{
    mml_cfg_node encs, e;
    char prefix[64];
    mml_status rc = mml_cfg_object(model, "encoders", true, &encs);
    for (int mo = 0; rc == MML_OK && mo < MML_MOD_COUNT; mo++) {
        const char *name = mml_modality_name((mml_modality)mo);
        if ((rc = mml_cfg_object(&encs, name, false, &e)) != MML_OK || !mml_cfg_present(&e)) continue;
        const mml_feature_spec *spec = &d->ds[MML_SPLIT_TRAIN]->spec[mo];
        if (!spec->enabled) return mml_cfg_error(&encs, name, "the data were opened without this modality");
        int i = m->n++;
        m->mod[i] = (mml_modality)mo;
        snprintf(prefix, sizeof prefix, "%s.", name);
        rc = mml_encoder_build(&e, spec, m->ps, prefix, seed + 101u * (uint64_t)(mo + 1), &m->enc[i]);
        if (rc == MML_OK) {
            shape->dim[i] = mml_encoder_dim(m->enc[i]);
            shape->seq_dim[i] = mml_encoder_seq_dim(m->enc[i]);
            shape->raw[i] = !strcmp(mml_encoder_type(m->enc[i]), "flatten");
        }
    }
    shape->n = m->n;
    return rc;
}

static mml_status build_head(mml_mm_model *m, const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed)
{
    mml_cfg_node h;
    int64_t sizes[MML_MLP_MAX_LAYERS + 1];
    double dropout = 0.0;
    int n_hidden = 0;
    static const char *const keys[] = { "hidden", "dropout", NULL };
    mml_status rc = mml_cfg_object(model, "head", false, &h);
    if (rc == MML_OK && mml_cfg_present(&h)) {
        rc = mml_cfg_check_keys(&h, keys);
        if (rc == MML_OK) n_hidden = mml_cfg_ints(&h, "hidden", sizes + 1, MML_MLP_MAX_LAYERS - 1);
        if (n_hidden < 0) return mml_last_status();
        if (rc == MML_OK) rc = mml_cfg_float(&h, "dropout", 0.0, &dropout);
        if (rc == MML_OK) rc = mml_cfg_check_range(&h, "dropout", dropout, 0.0, 0.95);
        if (rc == MML_OK && mml_fusion_outputs_logits(m->fusion))
            rc = mml_cfg_error(model, "head", "late fusion ends in per-modality classifiers; remove the head");
        for (int i = 1; rc == MML_OK && i <= n_hidden; i++)
            if (sizes[i] < 1) rc = mml_cfg_error(&h, "hidden", "sizes must be positive");
    }
    mml_cfg_node tasks;
    if (rc == MML_OK) rc = mml_cfg_array(model, "tasks", false, &tasks);
    if (rc == MML_OK && mml_cfg_len(&tasks) && mml_fusion_outputs_logits(m->fusion))
        rc = mml_cfg_error(model, "fusion", "late fusion has one task; model.tasks needs a fusion with a shared representation");
    if (rc != MML_OK || mml_fusion_outputs_logits(m->fusion)) return rc;
    sizes[0] = mml_fusion_dim(m->fusion);
    sizes[n_hidden + 1] = m->n_classes;
    mml_rng r;
    mml_rng_seed(&r, seed + 7);
    rc = mml_nn_mlp_init(&m->head, m->ps, "head", sizes, n_hidden + 2, MML_ACT_RELU, (float)dropout, &r);
    static const char *const keys_t[] = { "label", "weight", NULL };
    for (int t = 0; rc == MML_OK && t < mml_cfg_len(&tasks); t++) {
        mml_cfg_node it = mml_cfg_at(&tasks, t);
        const char *field;
        double w;
        if (!mml_cfg_present(&it)) return mml_cfg_error(&tasks, NULL, "item %d is not an object", t);
        if ((rc = mml_cfg_check_keys(&it, keys_t)) != MML_OK) return rc;
        if ((rc = mml_cfg_string_req(&it, "label", &field)) != MML_OK) return rc;
        if ((rc = mml_cfg_float(&it, "weight", 1.0, &w)) != MML_OK) return rc;
        if ((rc = mml_cfg_check_range(&it, "weight", w, 0.0, 100.0)) != MML_OK) return rc;
        int k = mml_mm_data_task(d, field);
        if (k < 0) return mml_cfg_error(&it, "label", "the data were opened without the field '%s'", field);
        char name[96];
        snprintf(name, sizeof name, "task_head.%s", field);
        sizes[n_hidden + 1] = d->tasks[k].n_classes;
        rc = mml_nn_mlp_init(&m->task_head[t], m->ps, name, sizes, n_hidden + 2, MML_ACT_RELU, (float)dropout, &r);
        m->task_index[t] = k;
        m->task_weight[t] = (float)w;
        m->n_tasks = t + 1;
    }
    return rc;
}

/* "impute": a multimodal autoencoder's file (relative to the config). */
static mml_status load_imputer(mml_mm_model *m, const mml_cfg_node *model, const mml_mm_data *d)
{
    const char *file = NULL;
    char path[2200];
    mml_status rc = mml_cfg_string(model, "impute", NULL, &file);
    if (rc != MML_OK || !file) return rc;
    resolve(path, sizeof path, d->dir, file);
    if ((rc = mml_ae_model_load(path, d, &m->imputer)) != MML_OK) mml_error_prefix("model.impute: ");
    return rc;
}

mml_status mml_mm_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed, mml_mm_model **out)
{
    static const char *const keys[] = { "encoders", "fusion", "head", "tasks", "impute", NULL };
    *out = NULL;
    mml_status rc = mml_cfg_check_keys(model, keys);
    if (rc != MML_OK) return rc;
    mml_mm_model *m = mml_calloc(1, sizeof *m);
    if (!m || !(m->ps = mml_params_create())) {
        mml_free(m);
        return MML_ERR_NOMEM;
    }
    m->n_classes = d->n_classes;
    mml_rng_seed(&m->rng, seed ^ 0x6d6d6cULL);
    mml_fusion_shape shape = { .n_out = d->n_classes };
    rc = build_encoders(m, model, d, seed, &shape);
    mml_cfg_node fn;
    if (rc == MML_OK) rc = mml_cfg_object(model, "fusion", m->n > 1, &fn);
    if (rc == MML_OK && mml_cfg_present(&fn)) rc = mml_fusion_build(&fn, &shape, m->ps, "fusion.", seed + 13, &m->fusion);
    else if (rc == MML_OK) { /* one modality: its embedding goes straight to the head */
        mml_config *c = NULL;
        rc = mml_config_parse("{\"type\": \"concat\"}", "fusion", &c);
        mml_cfg_node root = mml_config_root(c);
        if (rc == MML_OK) rc = mml_fusion_build(&root, &shape, m->ps, "fusion.", seed + 13, &m->fusion);
        mml_config_free(c);
    }
    for (int i = 0; rc == MML_OK && i < m->n; i++) mml_encoder_set_seq(m->enc[i], mml_fusion_reads_seq(m->fusion));
    if (rc == MML_OK) rc = build_head(m, model, d, seed);
    if (rc == MML_OK) rc = load_imputer(m, model, d);
    if (rc != MML_OK) {
        mml_mm_model_free(m);
        return rc;
    }
    *out = m;
    return MML_OK;
}

/* Logits of the main task; those of the extra tasks into tasks[] when not NULL. */
static mml_tensor *mm_forward(mml_ctx *ctx, mml_mm_model *m, const mml_batch *b, mml_tensor **weights,
                              mml_tensor **tasks)
{
    mml_encoding enc[MML_MOD_COUNT];
    mml_tensor *present[MML_MOD_COUNT];
    for (int i = 0; i < m->n; i++) {
        mml_modality mo = m->mod[i];
        if (mml_encoder_forward(ctx, m->enc[i], b->x[mo], b->length[mo], &enc[i]) != MML_OK) return NULL;
        present[i] = b->present[mo];
    }
    mml_tensor *h = mml_fusion_forward(ctx, m->fusion, enc, present, weights);
    if (!h || mml_fusion_outputs_logits(m->fusion)) return h;
    for (int t = 0; tasks && t < m->n_tasks; t++)
        if (!(tasks[t] = mml_nn_mlp_forward(ctx, &m->task_head[t], h, &m->rng))) return NULL;
    return mml_nn_mlp_forward(ctx, &m->head, h, &m->rng);
}

static mml_tensor *task_target(mml_ctx *ctx, const int32_t *labels, const int64_t *rows, int64_t B)
{
    mml_tensor *y = mml_new(ctx, MML_I32, 1, &B);
    for (int64_t i = 0; y && i < B; i++) mml_i32(y)[i] = labels[rows[i]];
    return y;
}

/* Cross-entropy of the main task plus the weighted ones of the extra tasks. */
static mml_tensor *mm_loss(mml_ctx *ctx, mml_mm_model *m, const mml_mm_data *d, const mml_batch *b,
                           const int64_t *rows, const mml_ce_options *ce)
{
    mml_tensor *tasks[MML_MM_MAX_TASKS];
    mml_tensor *loss = mml_loss_cross_entropy(ctx, mm_forward(ctx, m, b, NULL, tasks), b->label, ce);
    for (int t = 0; loss && t < m->n_tasks; t++) {
        mml_tensor *y = task_target(ctx, d->tasks[m->task_index[t]].label[MML_SPLIT_TRAIN], rows, b->size);
        mml_tensor *l = y ? mml_loss_cross_entropy(ctx, tasks[t], y, ce) : NULL;
        loss = l ? mml_add(ctx, loss, mml_mul_scalar(ctx, l, m->task_weight[t])) : NULL;
    }
    return loss;
}

/* Removes modality i of sample b: presence 0 and zero features. */
static void drop_modality(const mml_batch *batch, mml_modality mo, int64_t b)
{
    mml_f32(batch->present[mo])[b] = 0.0f;
    mml_tensor *x = batch->x[mo];
    int64_t w = x->numel / x->shape[0];
    memset((char *)x->data + (size_t)(b * w) * mml_dtype_size(x->dtype), 0, (size_t)w * mml_dtype_size(x->dtype));
    if (batch->length[mo]) mml_i32(batch->length[mo])[b] = 0;
}

/* Modality dropout (as in Neverova et al.'s ModDrop): each modality of a
 * sample is dropped with probability p, but never all of them. */
static void modality_dropout(mml_mm_model *m, const mml_batch *batch, float p)
{
    if (p <= 0 || m->n < 2) return;
    for (int64_t b = 0; b < batch->size; b++) {
        bool drop[MML_MOD_COUNT];
        int kept = 0;
        for (int i = 0; i < m->n; i++) {
            drop[i] = mml_rng_uniform(&m->rng) < p;
            kept += !drop[i] && mml_f32(batch->present[m->mod[i]])[b] > 0;
        }
        if (!kept) continue;
        for (int i = 0; i < m->n; i++)
            if (drop[i]) drop_modality(batch, m->mod[i], b);
    }
}

/* ---- augmentation ---- */

static mml_status read_int_in(const mml_cfg_node *n, const char *key, int hi, int *out)
{
    int64_t v;
    mml_status rc = mml_cfg_int(n, key, 0, &v);
    if (rc == MML_OK) rc = mml_cfg_check_range(n, key, (double)v, 0, hi);
    *out = (int)v;
    return rc;
}

static mml_status read_noise(const mml_cfg_node *n, float *out)
{
    double v;
    mml_status rc = mml_cfg_float(n, "noise", 0.0, &v);
    if (rc == MML_OK) rc = mml_cfg_check_range(n, "noise", v, 0.0, 10.0);
    *out = (float)v;
    return rc;
}

mml_status mml_mm_model_set_augment(mml_mm_model *m, const mml_cfg_node *train)
{
    mml_cfg_node aug, audio, image;
    static const char *const keys[] = { "audio", "image", NULL };
    static const char *const akeys[] = { "time_mask", "freq_mask", "time_shift", "noise", NULL };
    static const char *const ikeys[] = { "shift", "noise", NULL };
    memset(&m->aug, 0, sizeof m->aug);
    mml_status rc = mml_cfg_object(train, "augment", false, &aug);
    if (rc != MML_OK || !mml_cfg_present(&aug)) return rc;
    if ((rc = mml_cfg_check_keys(&aug, keys)) != MML_OK) return rc;
    if ((rc = mml_cfg_object(&aug, "audio", false, &audio)) == MML_OK && mml_cfg_present(&audio)) {
        rc = mml_cfg_check_keys(&audio, akeys);
        if (rc == MML_OK) rc = read_int_in(&audio, "time_mask", 100000, &m->aug.time_mask);
        if (rc == MML_OK) rc = read_int_in(&audio, "freq_mask", 100000, &m->aug.freq_mask);
        if (rc == MML_OK) rc = read_int_in(&audio, "time_shift", 100000, &m->aug.time_shift);
        if (rc == MML_OK) rc = read_noise(&audio, &m->aug.audio_noise);
    }
    if (rc == MML_OK && (rc = mml_cfg_object(&aug, "image", false, &image)) == MML_OK && mml_cfg_present(&image)) {
        rc = mml_cfg_check_keys(&image, ikeys);
        if (rc == MML_OK) rc = read_int_in(&image, "shift", 1000, &m->aug.image_shift);
        if (rc == MML_OK) rc = read_noise(&image, &m->aug.image_noise);
    }
    return rc;
}

/* One mask of width [0, w] along an axis of a [F, T] matrix, filled with v. */
static void mask_span(float *x, int64_t F, int64_t T, bool time, int w, float v, mml_rng *r)
{
    int64_t len = time ? T : F, width = mml_rng_below(r, (uint32_t)w + 1);
    if (width >= len) width = len;
    int64_t start = mml_rng_below(r, (uint32_t)(len - width + 1));
    for (int64_t f = 0; f < F; f++)
        for (int64_t t = 0; t < T; t++)
            if ((time ? t : f) >= start && (time ? t : f) < start + width) x[f * T + t] = v;
}

static void augment_audio(const mml_mm_augment *a, float *x, int64_t F, int64_t T, float sd, mml_rng *r, float *tmp)
{
    if (a->time_shift) { /* circular: a spoken word moved in time is still the word */
        int64_t k = (int64_t)mml_rng_below(r, 2u * (uint32_t)a->time_shift + 1) - a->time_shift;
        memcpy(tmp, x, (size_t)(F * T) * sizeof *x);
        for (int64_t f = 0; f < F; f++)
            for (int64_t t = 0; t < T; t++) x[f * T + ((t + k) % T + T) % T] = tmp[f * T + t];
    }
    double mean = 0;
    for (int64_t i = 0; i < F * T; i++) mean += x[i];
    mean /= (double)(F * T);
    if (a->time_mask) mask_span(x, F, T, true, a->time_mask, (float)mean, r);
    if (a->freq_mask) mask_span(x, F, T, false, a->freq_mask, (float)mean, r);
    for (int64_t i = 0; a->audio_noise > 0 && i < F * T; i++) x[i] += a->audio_noise * sd * mml_rng_normal(r);
}

static void augment_image(const mml_mm_augment *a, float *x, int64_t C, int64_t H, int64_t W, float sd, mml_rng *r,
                          float *tmp)
{
    if (a->image_shift) {
        int s = a->image_shift;
        int64_t dy = (int64_t)mml_rng_below(r, 2u * (uint32_t)s + 1) - s, dx = (int64_t)mml_rng_below(r, 2u * (uint32_t)s + 1) - s;
        memcpy(tmp, x, (size_t)(C * H * W) * sizeof *x);
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t u = 0; u < W; u++) {
                    int64_t sy = y - dy, su = u - dx;
                    x[(c * H + y) * W + u] = sy >= 0 && sy < H && su >= 0 && su < W ? tmp[(c * H + sy) * W + su] : 0.0f;
                }
    }
    for (int64_t i = 0; a->image_noise > 0 && i < C * H * W; i++) x[i] += a->image_noise * sd * mml_rng_normal(r);
}

static void augment(mml_mm_model *m, const mml_mm_data *d, const mml_batch *b, float *tmp)
{
    const mml_mm_augment *a = &m->aug;
    mml_tensor *au = b->x[MML_MOD_AUDIO], *im = b->x[MML_MOD_IMAGE];
    bool do_audio = au && au->dtype == MML_F32 && au->ndim == 3 &&
                    (a->time_mask || a->freq_mask || a->time_shift || a->audio_noise > 0);
    bool do_image = im && im->dtype == MML_F32 && im->ndim == 4 && (a->image_shift || a->image_noise > 0);
    for (int64_t s = 0; s < b->size; s++) {
        if (do_audio && mml_f32(b->present[MML_MOD_AUDIO])[s] > 0)
            augment_audio(a, mml_f32(au) + s * au->shape[1] * au->shape[2], au->shape[1], au->shape[2],
                          d->feat_std[MML_MOD_AUDIO], &m->rng, tmp);
        if (do_image && mml_f32(b->present[MML_MOD_IMAGE])[s] > 0)
            augment_image(a, mml_f32(im) + s * im->shape[1] * im->shape[2] * im->shape[3], im->shape[1], im->shape[2],
                          im->shape[3], d->feat_std[MML_MOD_IMAGE], &m->rng, tmp);
    }
}

/* ---- training ---- */

static double accuracy_of(mml_mm_model *m, const mml_mm_data *d, mml_data_split s)
{
    mml_mm_eval ev;
    if (!d->ds[s] || mml_mm_evaluate(m, d, s, NULL, &ev) != MML_OK) return NAN;
    mml_confusion_free(&ev.cm);
    return ev.metrics.accuracy;
}

typedef struct train_state {
    mml_mm_model *m;
    const mml_mm_data *d;
    float modality_dropout;
    float *scratch;
    mml_ce_options ce;
} train_state;

static mml_tensor *train_loss(mml_ctx *ctx, void *user, const mml_batch *b, const int64_t *rows)
{
    train_state *st = user;
    modality_dropout(st->m, b, st->modality_dropout);
    augment(st->m, st->d, b, st->scratch);
    return mm_loss(ctx, st->m, st->d, b, rows, &st->ce);
}

static double val_accuracy(void *user)
{
    train_state *st = user;
    return accuracy_of(st->m, st->d, MML_SPLIT_VAL);
}

mml_status mml_mm_train(mml_mm_model *m, const mml_mm_data *d, const mml_train_options *o, mml_mm_history *h)
{
    memset(h, 0, sizeof *h);
    const mml_dataset *ds = d->ds[MML_SPLIT_TRAIN];
    int64_t width = 1;
    for (int mo = 0; mo < MML_MOD_COUNT; mo++) width = ds->row_numel[mo] > width ? ds->row_numel[mo] : width;
    train_state st = { m, d, o->modality_dropout, mml_malloc((size_t)width * sizeof(float)), mml_ce_defaults() };
    if (!st.scratch) return MML_ERR_NOMEM;
    st.ce.label_smoothing = o->label_smoothing;
    fit_task t = { .ps = m->ps, .ds = ds, .n = ds->n, .loss = train_loss, .validate = val_accuracy,
                   .val_name = "val_accuracy", .user = &st };
    fit_result res;
    mml_status rc = fit_run(&t, o, h->train_loss, h->val_accuracy, (int)(sizeof h->train_loss / sizeof h->train_loss[0]), &res);
    h->epochs = res.epochs;
    h->train_seconds = res.seconds;
    h->samples_per_second = res.samples_per_second;
    h->train_bytes = res.train_bytes;
    mml_free(st.scratch);
    return rc;
}

/* ---- evaluation ---- */

void mml_mm_perturb_batch(const mml_mm_data *d, const mml_batch *b, const mml_modality *mods, int n,
                          const mml_mm_perturb *p, mml_rng *r)
{
    for (int i = 0; i < n; i++) {
        mml_modality mo = mods[i];
        mml_tensor *x = b->x[mo];
        int64_t w = x->numel / x->shape[0];
        float sd = p->noise[mo] * d->feat_std[mo];
        for (int64_t s = 0; s < b->size; s++) {
            if (p->missing[mo] > 0 && mml_rng_uniform(r) < p->missing[mo]) {
                drop_modality(b, mo, s);
                continue;
            }
            if (sd > 0 && x->dtype == MML_F32 && mml_f32(b->present[mo])[s] > 0)
                for (int64_t j = 0; j < w; j++) mml_f32(x)[s * w + j] += sd * mml_rng_normal(r);
        }
    }
}

static int64_t argmax_row(const float *row, int64_t C)
{
    int64_t best = 0;
    for (int64_t c = 1; c < C; c++)
        if (row[c] > row[best]) best = c;
    return best;
}

static int64_t correct(const mml_tensor *logits, const int32_t *labels, const int64_t *rows)
{
    int64_t n = 0, B = logits->shape[0], C = logits->shape[1];
    for (int64_t i = 0; i < B; i++) n += argmax_row(mml_f32(logits) + i * C, C) == labels[rows[i]];
    return n;
}

static void add_weights(mml_mm_eval *out, const mml_mm_model *m, const mml_tensor *w)
{
    if (!w) return;
    out->has_weights = true;
    for (int64_t b = 0; b < w->shape[0]; b++)
        for (int i = 0; i < m->n; i++) out->modality_weight[m->mod[i]] += mml_f32(w)[b * m->n + i];
}

mml_status mml_mm_evaluate(mml_mm_model *m, const mml_mm_data *d, mml_data_split split, const mml_mm_perturb *p,
                           mml_mm_eval *out)
{
    memset(out, 0, sizeof *out);
    const mml_dataset *ds = d->ds[split];
    if (!ds) return mml_error(MML_ERR_ARG, "evaluate: the data have no %s split", g_split_keys[split]);
    mml_status rc = mml_confusion_init(&out->cm, m->n_classes);
    if (!m->eval_ctx) m->eval_ctx = mml_ctx_create();
    mml_ctx *ctx = m->eval_ctx;
    int64_t *rows = mml_malloc((size_t)ds->n * sizeof *rows);
    if (rc != MML_OK || !ctx || !rows) {
        mml_free(rows);
        mml_confusion_free(&out->cm);
        return rc != MML_OK ? rc : MML_ERR_NOMEM;
    }
    mml_set_grad_enabled(ctx, false);
    mml_set_training(ctx, false);
    mml_dataset_order(rows, ds->n, NULL);
    mml_rng r;
    mml_rng_seed(&r, p ? p->seed : 0);
    mml_ce_options ce = mml_ce_defaults();
    double t0 = mml_now(), loss_sum = 0;
    /* Batches of 64: at 256 the evaluation arena outweighed the training step's
     * (which holds gradients too), and the larger of the two sets the peak. */
    const int64_t B = 64;
    double task_correct[MML_MM_MAX_TASKS] = { 0 };
    for (int64_t s = 0; s < ds->n && rc == MML_OK; s += B) {
        mml_ctx_reset(ctx);
        int64_t nb = s + B <= ds->n ? B : ds->n - s;
        mml_batch b;
        if ((rc = mml_dataset_batch(ctx, ds, rows + s, nb, &b)) != MML_OK) break;
        if (p) mml_mm_perturb_batch(d, &b, m->mod, m->n, p, &r);
        if (m->imputer && (rc = mml_ae_impute(m->imputer, ctx, &b)) != MML_OK) break;
        mml_tensor *w = NULL, *tasks[MML_MM_MAX_TASKS], *logits = mm_forward(ctx, m, &b, &w, tasks);
        for (int t = 0; logits && t < m->n_tasks; t++)
            task_correct[t] += (double)correct(tasks[t], d->tasks[m->task_index[t]].label[split], rows + s);
        mml_tensor *loss = logits ? mml_loss_cross_entropy(ctx, logits, b.label, &ce) : NULL;
        if (!loss) {
            rc = mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
            break;
        }
        loss_sum += mml_f32(loss)[0] * (double)nb;
        add_weights(out, m, w);
        int64_t C = logits->shape[1];
        for (int64_t i = 0; i < nb; i++) mml_confusion_add(&out->cm, mml_i32(b.label)[i], (int)argmax_row(mml_f32(logits) + i * C, C));
    }
    for (int t = 0; t < MML_MM_MAX_TASKS; t++) out->task_accuracy[t] = NAN;
    for (int t = 0; t < m->n_tasks; t++) out->task_accuracy[m->task_index[t]] = task_correct[t] / (double)ds->n;
    out->seconds = mml_now() - t0;
    out->loss = loss_sum / (double)ds->n;
    out->metrics = mml_metrics_compute(&out->cm, NULL);
    for (int mo = 0; mo < MML_MOD_COUNT; mo++) out->modality_weight[mo] /= (double)ds->n;
    mml_free(rows);
    mml_ctx_trim(ctx); /* idle until the next evaluation: training must not pay for its pages */
    if (rc != MML_OK) mml_confusion_free(&out->cm);
    return rc;
}

mml_tensor *mml_mm_model_forward(mml_ctx *ctx, mml_mm_model *m, const mml_batch *b)
{
    if (m->imputer && mml_ae_impute(m->imputer, ctx, b) != MML_OK) return NULL;
    return mm_forward(ctx, m, b, NULL, NULL);
}

mml_status mml_mm_model_save(mml_mm_model *m, const char *path, const char *config_json, const char *classes_json)
{
    return mml_params_save_model(m->ps, path, "mml-multimodal-1", config_json, classes_json);
}
