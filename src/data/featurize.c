#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/featurize.h"
#include "mml/image.h"
#include "mml/transform.h"

mml_feature_config mml_feature_defaults(void)
{
    mml_feature_config c = { .image = true, .audio = true, .text = true, .channels = 1, .height = 28, .width = 28,
                             .mean = 0.0f, .std = 1.0f, .rate = 8000, .frames = 64, .utterance_norm = true,
                             .context = 16 };
    c.spec = mml_spec_defaults(8000);
    c.spec.n_fft = c.spec.win_length = 256;
    c.spec.hop_length = 80;
    c.spec.n_mels = 40;
    c.spec.f_max = 4000.0f;
    return c;
}

/* FNV-1a: a per-sample seed from its id, so augmentation does not depend on
 * which thread extracts which sample. */
static uint64_t id_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; s && *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* Without transforms an image stays 8-bit through decoding and resizing, and
 * with mean 0 and std 1 its features are v / 255: the dataset keeps the bytes
 * (mml_feature_spec.stored_u8) and gathers those floats. */
static bool image_as_bytes(const mml_feature_config *c) { return !c->transforms && c->mean == 0.0f && c->std == 1.0f; }

/* Decode, the optional pipeline, a PIL-style resize to height x width, then
 * (x/255 - mean) / std (F32 pipeline output is already on the [0, 1] scale),
 * or the bytes themselves (image_as_bytes). */
static mml_status image_features(const mml_feature_config *c, const mml_sample *s, void *out)
{
    const char *path = s->path[MML_MOD_IMAGE];
    mml_tensor *x = mml_image_load(path, c->channels);
    if (x && c->transforms) {
        mml_rng rng;
        mml_rng_seed(&rng, c->transform_seed ^ id_hash(s->id));
        mml_tensor *y = mml_transforms_apply(c->transforms, x, &rng);
        if (!y) mml_error_prefix("%s: ", path);
        mml_tensor_free(x);
        x = y;
    }
    if (x && (x->shape[1] != c->height || x->shape[2] != c->width)) {
        mml_tensor *y = mml_image_resize(x, c->height, c->width, c->interp);
        mml_tensor_free(x);
        x = y;
    }
    if (x && x->shape[0] != c->channels) {
        mml_error(MML_ERR_SHAPE, "%s: the transforms give %lld channels, the featurizer wants %d", path,
                  (long long)x->shape[0], c->channels);
        mml_tensor_free(x);
        x = NULL;
    }
    if (!x) return mml_last_status();
    mml_status rc = MML_OK;
    float div = x->dtype == MML_U8 ? 255.0f : 1.0f, *f = out;
    if (!image_as_bytes(c))
        for (int64_t i = 0; i < x->numel; i++)
            f[i] = ((x->dtype == MML_U8 ? ((uint8_t *)x->data)[i] : mml_f32(x)[i]) / div - c->mean) / c->std;
    else if (x->dtype == MML_U8) memcpy(out, x->data, (size_t)x->numel);
    else rc = mml_error(MML_ERR_FORMAT, "%s: decoded as %s, not 8-bit", path, mml_dtype_name(x->dtype));
    mml_tensor_free(x);
    return rc;
}

static mml_status audio_features(const mml_feature_config *c, const char *path, float *out, int64_t *len)
{
    mml_audio a;
    mml_status rc = mml_wav_load(path, &a);
    if (rc == MML_OK && a.rate != c->rate) rc = mml_audio_resample(&a, c->rate);
    mml_tensor *f = rc == MML_OK ? mml_audio_features(&a, MML_FEAT_LOGMEL, &c->spec) : NULL;
    mml_audio_free(&a);
    if (!f) {
        if (rc == MML_OK) mml_error_prefix("%s: ", path);
        return mml_last_status();
    }
    int64_t bins = f->shape[0], frames = f->shape[1], keep = frames < c->frames ? frames : c->frames;
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < bins * keep; i++) mean += mml_f32(f)[(i / keep) * frames + i % keep];
    mean /= (double)(bins * keep);
    for (int64_t i = 0; i < bins * keep; i++) {
        double d = mml_f32(f)[(i / keep) * frames + i % keep] - mean;
        var += d * d;
    }
    float inv = c->utterance_norm ? (float)(1.0 / sqrt(var / (double)(bins * keep) + 1e-5)) : 1.0f;
    float shift = c->utterance_norm ? (float)mean : 0.0f;
    for (int64_t b = 0; b < bins; b++)
        for (int64_t t = 0; t < keep; t++) out[b * c->frames + t] = (mml_f32(f)[b * frames + t] - shift) * inv;
    *len = keep;
    mml_tensor_free(f);
    return MML_OK;
}

static mml_status extract(void *user, const mml_sample *s, mml_modality m, void *out, int64_t *length)
{
    const mml_feature_config *c = user;
    if (m == MML_MOD_IMAGE) return image_features(c, s, out);
    if (m == MML_MOD_AUDIO) return audio_features(c, s->path[m], out, length);
    int n = mml_bpe_encode_clip(c->bpe, s->text, out, c->context, c->context);
    if (n < 0) return mml_last_status();
    int32_t *ids = out;
    *length = 0;
    while (*length < c->context && ids[*length] != 0) (*length)++;
    return MML_OK;
}

mml_status mml_featurizer_init(mml_featurizer *f, mml_feature_config *c, char *params, size_t cap)
{
    memset(f, 0, sizeof *f);
    if (c->text && !c->bpe) return mml_error(MML_ERR_ARG, "featurizer: text features need a BPE model");
    if (c->image)
        f->spec[MML_MOD_IMAGE] = (mml_feature_spec){ .enabled = true, .dtype = MML_F32, .ndim = 3,
                                                     .shape = { c->channels, c->height, c->width }, .seq_axis = -1,
                                                     .stored_u8 = image_as_bytes(c) };
    if (c->audio) f->spec[MML_MOD_AUDIO] = (mml_feature_spec){ true, MML_F32, 2, { c->spec.n_mels, c->frames }, 1 };
    if (c->text) f->spec[MML_MOD_TEXT] = (mml_feature_spec){ true, MML_I32, 1, { c->context }, 0 };
    snprintf(params, cap, "v2 img %d %dx%d %s %g %g tf %016llx | audio %d %d fft %d win %d hop %d mels %d %g-%g %d %d norm %d | text clip %d",
             c->channels, c->height, c->width, c->interp == MML_INTERP_BICUBIC ? "bicubic" : "bilinear", c->mean, c->std,
             c->transforms ? (unsigned long long)(id_hash(mml_transforms_json(c->transforms)) ^ c->transform_seed) : 0ULL,
             c->rate, c->frames, c->spec.n_fft, c->spec.win_length,
             c->spec.hop_length, c->spec.n_mels, c->spec.f_min, c->spec.f_max, c->spec.mel_scale, c->spec.slaney_norm,
             c->utterance_norm, c->context);
    f->extract = extract;
    f->user = c;
    f->params = params;
    return MML_OK;
}
