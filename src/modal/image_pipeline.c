/* A JSON-described pipeline of image transforms (mml/transform.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/transform.h"

#define MAX_NORM_CHANNELS 16

typedef enum step_kind {
    STEP_RESIZE, STEP_CENTER_CROP, STEP_RANDOM_CROP, STEP_HFLIP, STEP_AFFINE, STEP_GRAYSCALE, STEP_TO_FLOAT,
    STEP_NORMALIZE, STEP_NOISE, STEP_ERASE, STEP_COUNT
} step_kind;

static const char *const STEP_NAMES[] = { "resize", "center_crop", "random_crop", "hflip", "random_affine",
                                          "grayscale", "to_float", "normalize", "gaussian_noise", "random_erasing",
                                          NULL };

typedef struct step {
    step_kind kind;
    int64_t h, w;   /* h only (w = 0): resize's shorter side */
    int64_t padding;
    float fill;
    mml_interp interp;
    double p;       /* hflip probability, noise std */
    int channels;
    int n_norm;
    float mean[MAX_NORM_CHANNELS], std[MAX_NORM_CHANNELS];
    mml_affine_params affine;
    mml_erase_params erase;
} step;

struct mml_transforms {
    int n;
    step *steps;
    char *json;
};

/* "key": n or [h, w], each in [1, 65536]. */
static mml_status parse_size(const mml_cfg_node *el, const char *key, step *s, bool allow_single)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(el->json, key);
    int64_t hw[2];
    if (cJSON_IsArray(v)) {
        int n = mml_cfg_ints(el, key, hw, 2);
        if (n < 0) return mml_last_status();
        if (n != 2) return mml_cfg_error(el, key, "expected [height, width]");
    } else {
        mml_status rc = mml_cfg_int_req(el, key, &hw[0]);
        if (rc != MML_OK) return rc;
        hw[1] = allow_single ? 0 : hw[0];
    }
    for (int i = 0; i < 2; i++)
        if ((hw[i] < 1 && !(i == 1 && hw[1] == 0)) || hw[i] > 65536)
            return mml_cfg_error(el, key, "sizes must be in [1, 65536], got %lld", (long long)hw[i]);
    s->h = hw[0];
    s->w = hw[1];
    return MML_OK;
}

/* "key": [lo, hi] (or a number x meaning [-x, x] when `symmetric`). */
static mml_status parse_range(const mml_cfg_node *n, const char *key, bool symmetric, double *lo, double *hi)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(n->json, key);
    if (!v || cJSON_IsNull(v)) return MML_OK;
    if (symmetric && cJSON_IsNumber(v)) {
        double x;
        mml_status rc = mml_cfg_float(n, key, 0.0, &x);
        if (rc == MML_OK && x < 0) rc = mml_cfg_error(n, key, "must be >= 0, got %g", x);
        *lo = -x;
        *hi = x;
        return rc;
    }
    double r[2];
    int k = mml_cfg_floats(n, key, r, 2);
    if (k < 0) return mml_last_status();
    if (k != 2 || r[0] > r[1]) return mml_cfg_error(n, key, "expected [low, high] with low <= high");
    *lo = r[0];
    *hi = r[1];
    return MML_OK;
}

static mml_status parse_float(const mml_cfg_node *n, const char *key, double def, double lo, double hi, double *out)
{
    mml_status rc = mml_cfg_float(n, key, def, out);
    return rc == MML_OK ? mml_cfg_check_range(n, key, *out, lo, hi) : rc;
}

static mml_status parse_affine(const mml_cfg_node *el, step *s)
{
    mml_cfg_node o;
    mml_status rc = mml_cfg_object(el, "random_affine", true, &o);
    static const char *const keys[] = { "degrees", "translate", "scale", "fill", NULL };
    if (rc == MML_OK) rc = mml_cfg_check_keys(&o, keys);
    mml_affine_params *a = &s->affine;
    *a = mml_affine_defaults();
    double t[2] = { 0, 0 }, fill = 0;
    int k = rc == MML_OK ? mml_cfg_floats(&o, "translate", t, 2) : -1;
    if (k < 0) return mml_last_status();
    if (k != 0 && (k != 2 || t[0] < 0 || t[0] > 1 || t[1] < 0 || t[1] > 1))
        return mml_cfg_error(&o, "translate", "expected [fraction_x, fraction_y], each in [0, 1]");
    a->translate_x = t[0];
    a->translate_y = t[1];
    if ((rc = parse_range(&o, "degrees", true, &a->degrees_lo, &a->degrees_hi)) != MML_OK) return rc;
    if ((rc = mml_cfg_check_range(&o, "degrees", a->degrees_lo, -360, 360)) != MML_OK) return rc;
    if ((rc = mml_cfg_check_range(&o, "degrees", a->degrees_hi, -360, 360)) != MML_OK) return rc;
    if ((rc = parse_range(&o, "scale", false, &a->scale_lo, &a->scale_hi)) != MML_OK) return rc;
    if (!(a->scale_lo > 0 && a->scale_hi <= 100)) return mml_cfg_error(&o, "scale", "must lie in (0, 100]");
    if ((rc = parse_float(&o, "fill", 0, -1e6, 1e6, &fill)) != MML_OK) return rc;
    a->fill = (float)fill;
    return MML_OK;
}

static mml_status parse_normalize(const mml_cfg_node *el, step *s)
{
    mml_cfg_node o;
    mml_status rc = mml_cfg_object(el, "normalize", true, &o);
    static const char *const keys[] = { "mean", "std", NULL };
    if (rc == MML_OK) rc = mml_cfg_check_keys(&o, keys);
    if (rc != MML_OK) return rc;
    double m[MAX_NORM_CHANNELS], sd[MAX_NORM_CHANNELS];
    int nm = mml_cfg_floats(&o, "mean", m, MAX_NORM_CHANNELS), ns = nm < 0 ? -1 : mml_cfg_floats(&o, "std", sd, MAX_NORM_CHANNELS);
    if (ns < 0) return mml_last_status();
    if (nm == 0 || nm != ns) return mml_cfg_error(&o, NULL, "needs \"mean\" and \"std\" of the same non-zero length");
    for (int i = 0; i < nm; i++) {
        if (!(sd[i] > 0)) return mml_cfg_error(&o, "std", "item %d: must be > 0, got %g", i, sd[i]);
        s->mean[i] = (float)m[i];
        s->std[i] = (float)sd[i];
    }
    s->n_norm = nm;
    return MML_OK;
}

static mml_status parse_erase(const mml_cfg_node *el, step *s)
{
    mml_cfg_node o;
    mml_status rc = mml_cfg_object(el, "random_erasing", true, &o);
    static const char *const keys[] = { "p", "scale", "ratio", "value", NULL };
    if (rc == MML_OK) rc = mml_cfg_check_keys(&o, keys);
    if (rc != MML_OK) return rc;
    mml_erase_params *e = &s->erase;
    *e = mml_erase_defaults();
    double p, v, slo = e->scale_lo, shi = e->scale_hi, rlo = e->ratio_lo, rhi = e->ratio_hi;
    if ((rc = parse_float(&o, "p", e->p, 0, 1, &p)) != MML_OK) return rc;
    if ((rc = parse_float(&o, "value", 0, -1e6, 1e6, &v)) != MML_OK) return rc;
    if ((rc = parse_range(&o, "scale", false, &slo, &shi)) != MML_OK) return rc;
    if (slo < 0 || shi > 1) return mml_cfg_error(&o, "scale", "must lie in [0, 1]");
    if ((rc = parse_range(&o, "ratio", false, &rlo, &rhi)) != MML_OK) return rc;
    if (!(rlo > 0) || rhi > 1e3) return mml_cfg_error(&o, "ratio", "must lie in (0, 1000]");
    *e = (mml_erase_params){ (float)p, (float)slo, (float)shi, (float)rlo, (float)rhi, (float)v };
    return MML_OK;
}

static mml_status parse_step(const mml_cfg_node *el, step *s)
{
    if (!cJSON_IsObject(el->json)) return mml_cfg_error(el, NULL, "expected an object such as {\"hflip\": 0.5}");
    int kind = -1;
    const char *name = NULL;
    for (const cJSON *c = el->json->child; c; c = c->next)
        for (int k = 0; k < STEP_COUNT; k++)
            if (!strcmp(c->string, STEP_NAMES[k])) {
                if (kind >= 0) return mml_cfg_error(el, c->string, "one step per object (already has \"%s\")", name);
                kind = k;
                name = c->string;
            }
    if (kind < 0) {
        char list[300];
        size_t n = 0;
        for (int k = 0; k < STEP_COUNT && n < sizeof list; k++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", STEP_NAMES[k]);
        return mml_cfg_error(el, NULL, "no transform named (expected one of: %s)", list);
    }
    memset(s, 0, sizeof *s);
    s->kind = (step_kind)kind;
    const char *keys[4] = { name, NULL, NULL, NULL };
    mml_status rc = MML_OK;
    double x;
    int64_t iv;
    switch (s->kind) {
    case STEP_RESIZE: {
        static const char *const interps[] = { "bilinear", "bicubic", NULL };
        int interp;
        keys[1] = "interpolation";
        if ((rc = parse_size(el, name, s, true)) == MML_OK && (rc = mml_cfg_choice(el, "interpolation", interps, 0, &interp)) == MML_OK)
            s->interp = (mml_interp)interp;
        break;
    }
    case STEP_CENTER_CROP: rc = parse_size(el, name, s, false); break;
    case STEP_RANDOM_CROP:
        keys[1] = "padding";
        keys[2] = "fill";
        if ((rc = parse_size(el, name, s, false)) == MML_OK && (rc = mml_cfg_int(el, "padding", 0, &iv)) == MML_OK &&
            (rc = mml_cfg_check_range(el, "padding", (double)iv, 0, 4096)) == MML_OK &&
            (rc = parse_float(el, "fill", 0, -1e6, 1e6, &x)) == MML_OK) {
            s->padding = iv;
            s->fill = (float)x;
        }
        break;
    case STEP_HFLIP: rc = parse_float(el, name, 0.5, 0, 1, &s->p); break;
    case STEP_AFFINE: rc = parse_affine(el, s); break;
    case STEP_GRAYSCALE:
        if ((rc = mml_cfg_int_req(el, name, &iv)) == MML_OK && iv != 1 && iv != 3)
            rc = mml_cfg_error(el, name, "expected 1 or 3 channels, got %lld", (long long)iv);
        s->channels = (int)iv;
        break;
    case STEP_TO_FLOAT: {
        bool on;
        if ((rc = mml_cfg_bool(el, name, true, &on)) == MML_OK && !on) rc = mml_cfg_error(el, name, "only true makes sense");
        break;
    }
    case STEP_NORMALIZE: rc = parse_normalize(el, s); break;
    case STEP_NOISE: rc = parse_float(el, name, 0, 0, 10, &s->p); break;
    case STEP_ERASE: rc = parse_erase(el, s); break;
    case STEP_COUNT: break;
    }
    return rc == MML_OK ? mml_cfg_check_keys(el, keys) : rc;
}

mml_status mml_transforms_parse(const mml_cfg_node *array, mml_transforms **out)
{
    *out = NULL;
    if (!cJSON_IsArray(array->json)) return mml_cfg_error(array, NULL, "expected an array of transforms");
    int n = mml_cfg_len(array);
    mml_transforms *t = mml_calloc(1, sizeof *t);
    if (!t || (n > 0 && !(t->steps = mml_calloc((size_t)n, sizeof *t->steps)))) {
        mml_free(t);
        return MML_ERR_NOMEM;
    }
    for (; t->n < n; t->n++) {
        mml_cfg_node el = mml_cfg_at(array, t->n);
        mml_status rc = parse_step(&el, &t->steps[t->n]);
        if (rc != MML_OK) {
            mml_transforms_free(t);
            return rc;
        }
    }
    char *s = cJSON_PrintUnformatted(array->json);
    t->json = s ? mml_strdup(s) : NULL;
    cJSON_free(s);
    if (!t->json) {
        mml_transforms_free(t);
        return MML_ERR_NOMEM;
    }
    *out = t;
    return MML_OK;
}

mml_status mml_transforms_parse_json(const char *text, const char *name, mml_transforms **out)
{
    *out = NULL;
    cJSON *root = cJSON_Parse(text);
    if (!root) return mml_error(MML_ERR_FORMAT, "%s: invalid JSON near '%.20s'", name, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
    mml_cfg_node n = { .json = root, .file = name };
    snprintf(n.path, sizeof n.path, "transforms");
    mml_status rc = mml_transforms_parse(&n, out);
    cJSON_Delete(root);
    return rc;
}

void mml_transforms_free(mml_transforms *t)
{
    if (!t) return;
    mml_free(t->steps);
    mml_free(t->json);
    mml_free(t);
}

int mml_transforms_count(const mml_transforms *t) { return t->n; }
const char *mml_transforms_json(const mml_transforms *t) { return t->json; }

/* torchvision Resize(n): the shorter side becomes n, the other int(n * long / short). */
static mml_tensor *resize_step(const step *s, const mml_tensor *x)
{
    int64_t h = s->h, w = s->w, ih = x->shape[1], iw = x->shape[2];
    if (!w) {
        if (ih <= iw) w = (int64_t)((double)s->h * (double)iw / (double)ih);
        else {
            w = s->h;
            h = (int64_t)((double)s->h * (double)ih / (double)iw);
        }
    }
    return mml_image_resize(x, h, w, s->interp);
}

static mml_tensor *apply_step(const step *s, mml_tensor *x, mml_rng *rng)
{
    switch (s->kind) {
    case STEP_RESIZE: return resize_step(s, x);
    case STEP_CENTER_CROP: return mml_image_center_crop(x, s->h, s->w);
    case STEP_RANDOM_CROP: return mml_image_random_crop(x, s->h, s->w, s->padding, s->fill, rng);
    case STEP_HFLIP: return mml_rng_uniform(rng) < s->p ? mml_image_hflip(x) : x;
    case STEP_AFFINE: return mml_image_random_affine(x, &s->affine, rng);
    case STEP_GRAYSCALE: return x->shape[0] == s->channels ? x : mml_image_to_channels(x, s->channels);
    case STEP_TO_FLOAT: return x->dtype == MML_F32 ? x : mml_image_to_f32(x);
    case STEP_NORMALIZE: return mml_image_normalize(x, s->mean, s->std, s->n_norm);
    case STEP_ERASE: return mml_image_erase_inplace(x, &s->erase, rng, NULL) == MML_OK ? x : NULL;
    case STEP_NOISE: {
        mml_tensor *y = x->dtype == MML_F32 ? x : mml_image_to_f32(x);
        if (y && mml_image_noise_inplace(y, (float)s->p, rng) != MML_OK) {
            if (y != x) mml_tensor_free(y);
            return NULL;
        }
        return y;
    }
    case STEP_COUNT: break;
    }
    return x;
}

mml_tensor *mml_transforms_apply(const mml_transforms *t, const mml_tensor *img, mml_rng *rng)
{
    /* A private copy, so in-place steps never touch the caller's image. */
    mml_tensor *x = img->ndim == 3 ? mml_image_crop(img, 0, 0, img->shape[1], img->shape[2], 0.0f)
                                   : mml_image_hflip(img); /* refuses it, naming the problem */
    for (int i = 0; x && i < t->n; i++) {
        mml_tensor *y = apply_step(&t->steps[i], x, rng);
        if (!y) mml_error_prefix("transforms[%d] (%s): ", i, STEP_NAMES[t->steps[i].kind]);
        if (y != x) mml_tensor_free(x);
        x = y;
    }
    return x;
}
