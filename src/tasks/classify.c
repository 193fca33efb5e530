#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/classify.h"
#include "mml/idx.h"
#include "mml/safetensors.h"

static const char *const DATA_KEYS[] = { "format", "train_images", "train_labels", "test_images", "test_labels",
                                          "normalize", "classes", "limit_train", "limit_test", NULL };
static const char *const TRAIN_KEYS[] = { "epochs", "batch_size", "optimizer", "schedule", "clip_norm",
                                          "label_smoothing", "patience", "val_fraction", "seed", "init_from",
                                          "init_skip", "freeze", "modality_dropout", "augment", NULL };

static void resolve(char *buf, size_t cap, const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !dir[0]) snprintf(buf, cap, "%s", path);
    else snprintf(buf, cap, "%s/%s", dir, path);
}

static mml_tensor *load_idx_key(const mml_cfg_node *data, const char *dir, const char *key)
{
    const char *rel;
    char path[4096];
    if (mml_cfg_string_req(data, key, &rel) != MML_OK) return NULL;
    resolve(path, sizeof path, dir, rel);
    mml_tensor *t = mml_idx_load(path);
    if (!t) mml_error_prefix("%s: data.%s: ", data->file, key);
    return t;
}

/* U8 images [N, ...] to normalised F32 [N, in_shape...]. */
static mml_tensor *images_to_input(const mml_cfg_node *data, mml_tensor *img, int64_t limit, int in_ndim,
                                   const int64_t *in_shape, const char *key)
{
    mml_cfg_node norm;
    double mean = 0.0, std = 1.0;
    if (mml_cfg_object(data, "normalize", false, &norm) != MML_OK || mml_cfg_float(&norm, "mean", 0.0, &mean) != MML_OK ||
        mml_cfg_float(&norm, "std", 1.0, &std) != MML_OK)
        return NULL;
    if (std <= 0) {
        mml_cfg_error(&norm, "std", "must be positive");
        return NULL;
    }
    if (img->dtype != MML_U8) {
        mml_cfg_error(data, key, "holds %s data; images must be unsigned bytes", mml_dtype_name(img->dtype));
        return NULL;
    }
    int64_t N = img->shape[0] < limit ? img->shape[0] : limit, per = img->shape[0] ? img->numel / img->shape[0] : 0;
    int64_t shape[MML_MAX_DIMS] = { N };
    memcpy(shape + 1, in_shape, (size_t)in_ndim * sizeof *shape);
    if (mml_shape_numel(in_ndim, in_shape) != per) {
        char buf[96];
        mml_cfg_error(data, key, "holds images of %lld values (%s); model.input needs %lld", (long long)per,
                      mml_shape_str(img, buf, sizeof buf), (long long)mml_shape_numel(in_ndim, in_shape));
        return NULL;
    }
    mml_tensor *x = mml_tensor_create(MML_F32, in_ndim + 1, shape, false);
    if (!x) return NULL;
    const uint8_t *src = img->data;
    float scale = (float)(1.0 / (255.0 * std)), shift = (float)(mean / std);
    for (int64_t i = 0; i < N * per; i++) mml_f32(x)[i] = (float)src[i] * scale - shift;
    return x;
}

static mml_tensor *labels_of(const mml_cfg_node *data, mml_tensor *lab, int64_t n, const char *key)
{
    if (lab->ndim != 1 || lab->shape[0] < n || (lab->dtype != MML_U8 && lab->dtype != MML_I32)) {
        mml_cfg_error(data, key, "must hold one integer label per image");
        return NULL;
    }
    mml_tensor *y = mml_tensor_create(MML_I32, 1, &n, false);
    for (int64_t i = 0; y && i < n; i++)
        mml_i32(y)[i] = lab->dtype == MML_U8 ? ((uint8_t *)lab->data)[i] : mml_i32(lab)[i];
    return y;
}

mml_status mml_classify_load_split(const mml_cfg_node *data, const char *dir, const char *split, int in_ndim,
                                   const int64_t *in_shape, mml_tensor **x, mml_tensor **y)
{
    char ikey[32], lkey[32], limkey[32];
    snprintf(ikey, sizeof ikey, "%s_images", split);
    snprintf(lkey, sizeof lkey, "%s_labels", split);
    snprintf(limkey, sizeof limkey, "limit_%s", split);
    *x = *y = NULL;
    int64_t limit;
    const char *format;
    mml_status rc = mml_cfg_check_keys(data, DATA_KEYS);
    if (rc == MML_OK) rc = mml_cfg_string(data, "format", "idx", &format);
    if (rc == MML_OK && strcmp(format, "idx") != 0)
        rc = mml_cfg_error(data, "format", "unknown value '%s' (expected: idx)", format);
    if (rc == MML_OK) rc = mml_cfg_int(data, limkey, INT64_MAX, &limit);
    if (rc != MML_OK) return rc;
    mml_tensor *img = load_idx_key(data, dir, ikey), *lab = img ? load_idx_key(data, dir, lkey) : NULL;
    if (img && lab && lab->shape[0] != img->shape[0])
        mml_cfg_error(data, lkey, "has %lld labels for %lld images", (long long)lab->shape[0], (long long)img->shape[0]);
    else if (img && lab && (*x = images_to_input(data, img, limit, in_ndim, in_shape, ikey)))
        *y = labels_of(data, lab, (*x)->shape[0], lkey);
    mml_tensor_free(img);
    mml_tensor_free(lab);
    if (!*y) {
        mml_tensor_free(*x);
        *x = NULL;
        return mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
    }
    return MML_OK;
}

static mml_status read_optimizer(const mml_cfg_node *train, mml_train_options *o)
{
    mml_cfg_node n;
    static const char *const kinds[] = { "sgd", "adam", "adamw", NULL };
    static const char *const keys[] = { "type", "lr", "weight_decay", "l1", "momentum", "dampening", "nesterov",
                                        "betas", "eps", NULL };
    int kind;
    double lr, wd, l1, mom, damp, eps, betas[2];
    bool nesterov;
    mml_status rc = mml_cfg_object(train, "optimizer", false, &n);
    if (rc == MML_OK) rc = mml_cfg_check_keys(&n, keys);
    if (rc == MML_OK) rc = mml_cfg_choice(&n, "type", kinds, MML_OPTIM_ADAM, &kind);
    if (rc != MML_OK) return rc;
    mml_optim_config d = mml_optim_defaults((mml_optim_kind)kind);
    rc = mml_cfg_float(&n, "lr", d.lr, &lr);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "weight_decay", d.weight_decay, &wd);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "l1", 0.0, &l1);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "momentum", 0.0, &mom);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "dampening", 0.0, &damp);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "eps", d.eps, &eps);
    if (rc == MML_OK) rc = mml_cfg_bool(&n, "nesterov", false, &nesterov);
    int nb = rc == MML_OK ? mml_cfg_floats(&n, "betas", betas, 2) : -1;
    if (nb < 0) return mml_last_status();
    if (lr <= 0) return mml_cfg_error(&n, "lr", "must be positive");
    o->optim = d;
    o->optim.lr = (float)lr;
    o->optim.weight_decay = (float)wd;
    o->optim.l1 = (float)l1;
    o->optim.momentum = (float)mom;
    o->optim.dampening = (float)damp;
    o->optim.eps = (float)eps;
    o->optim.nesterov = nesterov;
    if (nb == 2) {
        o->optim.beta1 = (float)betas[0];
        o->optim.beta2 = (float)betas[1];
    }
    return MML_OK;
}

static mml_status read_schedule(const mml_cfg_node *train, mml_train_options *o)
{
    mml_cfg_node n;
    static const char *const kinds[] = { "constant", "step", "cosine", NULL };
    static const char *const keys[] = { "type", "warmup_steps", "step_size", "gamma", "min_lr", NULL };
    int kind;
    int64_t warm, step;
    double gamma, min_lr;
    mml_status rc = mml_cfg_object(train, "schedule", false, &n);
    if (rc == MML_OK) rc = mml_cfg_check_keys(&n, keys);
    if (rc == MML_OK) rc = mml_cfg_choice(&n, "type", kinds, 0, &kind);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "warmup_steps", 0, &warm);
    if (rc == MML_OK) rc = mml_cfg_int(&n, "step_size", 1000, &step);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "gamma", 0.1, &gamma);
    if (rc == MML_OK) rc = mml_cfg_float(&n, "min_lr", 0.0, &min_lr);
    if (rc != MML_OK) return rc;
    o->schedule = (mml_lr_schedule){ (mml_lr_kind)kind, 0.0f, warm, step, (float)gamma, 0, (float)min_lr };
    return MML_OK;
}

mml_status mml_train_options_read(const mml_cfg_node *root, int64_t epochs, int64_t seed, mml_train_options *o)
{
    mml_cfg_node t;
    int64_t e, b, pat, s;
    double clip, ls, vf, md;
    *o = mml_train_defaults();
    mml_status rc = mml_cfg_object(root, "train", false, &t);
    if (rc == MML_OK) rc = mml_cfg_check_keys(&t, TRAIN_KEYS);
    if (rc == MML_OK) rc = mml_cfg_int(&t, "epochs", 10, &e);
    if (rc == MML_OK) rc = mml_cfg_int(&t, "batch_size", 64, &b);
    if (rc == MML_OK) rc = mml_cfg_int(&t, "patience", 0, &pat);
    if (rc == MML_OK) rc = mml_cfg_int(&t, "seed", 0, &s);
    if (rc == MML_OK) rc = mml_cfg_float(&t, "clip_norm", 0.0, &clip);
    if (rc == MML_OK) rc = mml_cfg_float(&t, "label_smoothing", 0.0, &ls);
    if (rc == MML_OK) rc = mml_cfg_float(&t, "val_fraction", 0.0, &vf);
    if (rc == MML_OK) rc = mml_cfg_float(&t, "modality_dropout", 0.0, &md);
    if (rc == MML_OK) rc = mml_cfg_check_range(&t, "modality_dropout", md, 0.0, 0.9);
    if (rc == MML_OK && (b < 1 || b > 1 << 20)) rc = mml_cfg_error(&t, "batch_size", "must be in [1, 1048576]");
    if (rc == MML_OK && e < 0) rc = mml_cfg_error(&t, "epochs", "must not be negative");
    if (rc == MML_OK) rc = mml_cfg_check_range(&t, "val_fraction", vf, 0.0, 0.9);
    if (rc == MML_OK) rc = mml_cfg_check_range(&t, "label_smoothing", ls, 0.0, 0.99);
    if (rc == MML_OK) rc = read_optimizer(&t, o);
    if (rc == MML_OK) rc = read_schedule(&t, o);
    if (rc != MML_OK) return rc;
    o->epochs = (int)(epochs >= 0 ? epochs : e);
    o->batch_size = b;
    o->patience = (int)pat;
    o->seed = (uint64_t)(seed >= 0 ? seed : s);
    o->clip_norm = (float)clip;
    o->label_smoothing = (float)ls;
    o->val_fraction = vf;
    o->modality_dropout = (float)md;
    return MML_OK;
}

static mml_status read_classes(const mml_cfg_node *data, mml_classify *job)
{
    mml_cfg_node arr;
    mml_status rc = mml_cfg_array(data, "classes", false, &arr);
    if (rc != MML_OK) return rc;
    int32_t max_label = 0;
    for (int64_t i = 0; i < job->train_y->numel; i++)
        max_label = mml_i32(job->train_y)[i] > max_label ? mml_i32(job->train_y)[i] : max_label;
    job->n_classes = mml_cfg_present(&arr) ? mml_cfg_len(&arr) : max_label + 1;
    if (job->n_classes <= max_label)
        return mml_cfg_error(data, "classes", "lists %d classes but the labels go up to %d", job->n_classes, max_label);
    job->classes = mml_calloc((size_t)job->n_classes, sizeof(char *));
    if (!job->classes) return MML_ERR_NOMEM;
    for (int c = 0; c < job->n_classes; c++) {
        const char *name = NULL;
        char num[16];
        if (mml_cfg_present(&arr)) {
            mml_cfg_node it = mml_cfg_at(&arr, c);
            const cJSON *j = it.json;
            if (!cJSON_IsString(j)) return mml_cfg_error(&arr, NULL, "item %d must be a string", c);
            name = j->valuestring;
        } else {
            snprintf(num, sizeof num, "%d", c);
            name = num;
        }
        if (!(job->classes[c] = mml_strdup(name))) return MML_ERR_NOMEM;
    }
    return MML_OK;
}

static char *dir_of(const char *path)
{
    char *d = mml_strdup(path);
    if (!d) return NULL;
    char *slash = strrchr(d, '/');
    if (slash) *slash = '\0';
    else strcpy(d, ".");
    return d;
}

mml_status mml_classify_open(const char *config_path, int64_t epochs, int64_t seed, mml_classify *job)
{
    memset(job, 0, sizeof *job);
    static const char *const keys[] = { "data", "model", "train", "task", NULL };
    mml_status rc = mml_config_load(config_path, &job->cfg);
    if (rc != MML_OK) return rc;
    mml_cfg_node root = mml_config_root(job->cfg), data, model;
    int64_t in_shape[4];
    int in_ndim = 0;
    char *dir = dir_of(config_path);
    rc = mml_cfg_check_keys(&root, keys);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "data", true, &data);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "model", true, &model);
    if (rc == MML_OK && (in_ndim = mml_cfg_ints(&model, "input", in_shape, 4)) < 1)
        rc = in_ndim < 0 ? mml_last_status() : mml_cfg_error(&model, "input", "is required");
    if (rc == MML_OK) rc = mml_train_options_read(&root, epochs, seed, &job->opt);
    if (rc == MML_OK) rc = mml_classify_load_split(&data, dir, "train", in_ndim, in_shape, &job->train_x, &job->train_y);
    if (rc == MML_OK) rc = mml_classify_load_split(&data, dir, "test", in_ndim, in_shape, &job->test_x, &job->test_y);
    if (rc == MML_OK) rc = read_classes(&data, job);
    mml_free(dir);
    if (rc != MML_OK) mml_classify_close(job);
    return rc;
}

void mml_classify_close(mml_classify *job)
{
    mml_config_free(job->cfg);
    mml_tensor_free(job->train_x);
    mml_tensor_free(job->train_y);
    mml_tensor_free(job->test_x);
    mml_tensor_free(job->test_y);
    for (int c = 0; job->classes && c < job->n_classes; c++) mml_free(job->classes[c]);
    mml_free(job->classes);
    memset(job, 0, sizeof *job);
}

char *mml_classify_classes_json(const mml_classify *job)
{
    cJSON *arr = cJSON_CreateArray();
    for (int c = 0; c < job->n_classes; c++) cJSON_AddItemToArray(arr, cJSON_CreateString(job->classes[c]));
    char *s = cJSON_PrintUnformatted(arr), *copy = s ? mml_strdup(s) : NULL;
    cJSON_free(s);
    cJSON_Delete(arr);
    return copy;
}

static bool has_prefix_in(const mml_cfg_node *list, const char *name)
{
    for (int i = 0; i < mml_cfg_len(list); i++) {
        mml_cfg_node it = mml_cfg_at(list, i);
        const cJSON *j = it.json;
        if (cJSON_IsString(j) && !strncmp(name, j->valuestring, strlen(j->valuestring))) return true;
    }
    return false;
}

static mml_status check_strings(const mml_cfg_node *list)
{
    for (int i = 0; i < mml_cfg_len(list); i++) {
        mml_cfg_node it = mml_cfg_at(list, i);
        if (!cJSON_IsString((const cJSON *)it.json)) return mml_cfg_error(list, NULL, "item %d must be a string", i);
    }
    return MML_OK;
}

static mml_status init_from(const mml_cfg_node *train, const char *dir, const mml_cfg_node *skip, mml_model *m)
{
    const char *rel;
    char path[4096];
    mml_status rc = mml_cfg_string(train, "init_from", NULL, &rel);
    if (rc != MML_OK || !rel) return rc;
    resolve(path, sizeof path, dir, rel);
    mml_safetensors *st;
    if ((rc = mml_safetensors_map(path, &st)) != MML_OK) {
        mml_error_prefix("%s: train.init_from: ", train->file);
        return rc;
    }
    mml_params *ps = mml_model_params(m);
    for (int i = 0; i < mml_params_count(ps) && rc == MML_OK; i++) {
        mml_tensor *t = mml_params_at(ps, i);
        if (has_prefix_in(skip, t->name)) continue;
        if ((rc = mml_safetensors_read_into(st, t->name, t)) != MML_OK)
            mml_error_prefix("%s: train.init_from %s (list new layers in train.init_skip): ", train->file, path);
    }
    mml_safetensors_free(st);
    return rc;
}

mml_status mml_classify_prepare_model(const mml_classify *job, const char *config_path, mml_model *m)
{
    mml_cfg_node root = mml_config_root(job->cfg), train, skip, freeze;
    mml_status rc = mml_cfg_object(&root, "train", false, &train);
    if (rc == MML_OK) rc = mml_cfg_array(&train, "init_skip", false, &skip);
    if (rc == MML_OK) rc = mml_cfg_array(&train, "freeze", false, &freeze);
    if (rc == MML_OK) rc = check_strings(&skip);
    if (rc == MML_OK) rc = check_strings(&freeze);
    char *dir = dir_of(config_path);
    if (rc == MML_OK) rc = init_from(&train, dir, &skip, m);
    mml_free(dir);
    for (int i = 0; rc == MML_OK && i < mml_cfg_len(&freeze); i++) {
        mml_cfg_node it = mml_cfg_at(&freeze, i);
        const char *prefix = ((const cJSON *)it.json)->valuestring;
        if (mml_params_freeze(mml_model_params(m), prefix, true) == 0)
            rc = mml_cfg_error(&freeze, NULL, "'%s' matches no parameter", prefix);
    }
    return rc;
}
