#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/featurize.h"
#include "mml/image.h"
#include "mml/ops.h"

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

static mml_status image_features(const mml_feature_config *c, const char *path, float *out)
{
    mml_tensor *img = mml_image_load(path, c->channels);
    if (!img) return mml_last_status();
    int64_t h = img->shape[1], w = img->shape[2];
    mml_status rc = MML_OK;
    if (h == c->height && w == c->width) {
        for (int64_t i = 0; i < img->numel; i++) out[i] = (((uint8_t *)img->data)[i] / 255.0f - c->mean) / c->std;
    } else { /* resize through the bilinear op on a private context */
        mml_ctx *ctx = mml_ctx_create();
        mml_tensor *x = ctx ? mml_new(ctx, MML_F32, 4, (int64_t[]){ 1, c->channels, h, w }) : NULL;
        for (int64_t i = 0; x && i < img->numel; i++) mml_f32(x)[i] = ((uint8_t *)img->data)[i] / 255.0f;
        mml_set_grad_enabled(ctx, false);
        mml_tensor *y = x ? mml_upsample_bilinear2d(ctx, x, c->height, c->width, false) : NULL;
        if (!y) rc = mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
        for (int64_t i = 0; y && i < y->numel; i++) out[i] = (mml_f32(y)[i] - c->mean) / c->std;
        mml_ctx_free(ctx);
    }
    mml_tensor_free(img);
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
    if (m == MML_MOD_IMAGE) return image_features(c, s->path[m], out);
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
    if (c->image) f->spec[MML_MOD_IMAGE] = (mml_feature_spec){ true, MML_F32, 3, { c->channels, c->height, c->width }, -1 };
    if (c->audio) f->spec[MML_MOD_AUDIO] = (mml_feature_spec){ true, MML_F32, 2, { c->spec.n_mels, c->frames }, 1 };
    if (c->text) f->spec[MML_MOD_TEXT] = (mml_feature_spec){ true, MML_I32, 1, { c->context }, 0 };
    snprintf(params, cap, "v1 img %d %dx%d %g %g | audio %d %d fft %d win %d hop %d mels %d %g-%g %d %d norm %d | text clip %d",
             c->channels, c->height, c->width, c->mean, c->std, c->rate, c->frames, c->spec.n_fft, c->spec.win_length,
             c->spec.hop_length, c->spec.n_mels, c->spec.f_min, c->spec.f_max, c->spec.mel_scale, c->spec.slaney_norm,
             c->utterance_norm, c->context);
    f->extract = extract;
    f->user = c;
    f->params = params;
    return MML_OK;
}
