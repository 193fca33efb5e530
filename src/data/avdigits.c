/* The avdigits builder. Images come from MNIST's 10,000 test digits (the only
 * MNIST part available here), split by seed; each is paired with a random FSDD
 * recording of the same digit from the matching FSDD split, so no recording
 * of a test speaker-take is seen in training. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/audio.h"
#include "mml/builders.h"
#include "mml/idx.h"
#include "mml/image.h"
#include "mml/progress.h"
#include "mml/rng.h"

#define N_TRAIN 7000
#define N_VAL 1000
#define N_TEST 2000
#define MAX_RECORDINGS 4096

static const char *const WORDS[10] = { "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine" };

typedef struct recording {
    char name[64], speaker[32];
    int digit, index;
} recording;

static int cmp_rec(const void *a, const void *b) { return strcmp(((const recording *)a)->name, ((const recording *)b)->name); }

static mml_status list_fsdd(const char *dir, recording *recs, int *n)
{
    DIR *d = opendir(dir);
    if (!d) return mml_error(MML_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    struct dirent *e;
    *n = 0;
    while ((e = readdir(d)) && *n < MAX_RECORDINGS) {
        recording r = { 0 };
        char speaker[32];
        if (sscanf(e->d_name, "%d_%31[a-z]_%d.wav", &r.digit, speaker, &r.index) != 3 || r.digit < 0 || r.digit > 9) continue;
        snprintf(r.name, sizeof r.name, "%.63s", e->d_name);
        snprintf(r.speaker, sizeof r.speaker, "%s", speaker);
        recs[(*n)++] = r;
    }
    closedir(d);
    qsort(recs, (size_t)*n, sizeof *recs, cmp_rec); /* readdir order is not stable */
    return *n ? MML_OK : mml_error(MML_ERR_FORMAT, "%s: no FSDD recordings ({digit}_{speaker}_{index}.wav)", dir);
}

/* Pixels as floats in [0, 1], with PCA energy removal when asked; then back to
 * bytes by the affine map that takes the training rows' range to [0, 255]. */
static mml_status prepare_images(const mml_avdigits_options *o, const mml_tensor *img, const int32_t *order,
                                 uint8_t *out, int *components)
{
    int64_t n = img->shape[0], dim = img->shape[1] * img->shape[2];
    float *x = mml_malloc((size_t)(n * dim) * sizeof(float));
    if (!x) return MML_ERR_NOMEM;
    for (int64_t i = 0; i < n * dim; i++) x[i] = ((const uint8_t *)img->data)[i] / 255.0f;
    *components = 0;
    mml_status rc = MML_OK;
    if (o->image_energy_removed > 0) {
        float *train = mml_malloc((size_t)((N_TRAIN + N_VAL) * dim) * sizeof(float)), *rec = mml_malloc((size_t)(n * dim) * sizeof(float));
        mml_pca pca;
        rc = train && rec ? MML_OK : MML_ERR_NOMEM;
        for (int i = 0; rc == MML_OK && i < N_TRAIN + N_VAL; i++)
            memcpy(train + i * dim, x + (int64_t)order[i] * dim, (size_t)dim * sizeof(float));
        if (rc == MML_OK) rc = mml_pca_fit(train, N_TRAIN + N_VAL, dim, o->image_energy_removed, o->seed, &pca);
        if (rc == MML_OK) {
            mml_pca_reconstruct(&pca, x, n, rec);
            *components = pca.k;
            memcpy(x, rec, (size_t)(n * dim) * sizeof(float));
            mml_pca_free(&pca);
        }
        mml_free(train);
        mml_free(rec);
    }
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < N_TRAIN + N_VAL; i++)
        for (int64_t j = 0; j < dim; j++) {
            float v = x[(int64_t)order[i] * dim + j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (int64_t i = 0; i < n * dim; i++) {
        float v = (x[i] - lo) * scale;
        out[i] = (uint8_t)lrintf(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
    mml_free(x);
    return rc;
}

static mml_status write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0) {
        if (f) fclose(f);
        return mml_error(MML_ERR_IO, "%s: cannot write", path);
    }
    return fclose(f) == 0 ? MML_OK : mml_error(MML_ERR_IO, "%s: cannot write", path);
}

/* The audio file a sample uses: the original (copied once) or a noisy copy of its own. */
static mml_status write_audio(const mml_avdigits_options *o, const char *fsdd, const recording *r, const char *tmp,
                              const char *id, mml_rng *rng, char *rel, size_t cap)
{
    char src[4200], dst[4200];
    snprintf(src, sizeof src, "%.4000s/%s", fsdd, r->name);
    bool noisy = !isnan(o->audio_snr_db);
    snprintf(rel, cap, noisy ? "audio/%s.wav" : "audio/%s", noisy ? id : r->name);
    snprintf(dst, sizeof dst, "%.4000s/%s", tmp, rel);
    struct stat sb;
    if (!noisy && stat(dst, &sb) == 0) return MML_OK;
    mml_audio a;
    mml_status rc = mml_wav_load(src, &a);
    if (rc != MML_OK) return rc;
    if (noisy) {
        double power = 0.0;
        for (int64_t i = 0; i < a.n; i++) power += (double)a.samples[i] * a.samples[i];
        float sigma = (float)sqrt(power / (double)(a.n ? a.n : 1) / pow(10.0, o->audio_snr_db / 10.0));
        for (int64_t i = 0; i < a.n; i++) a.samples[i] += sigma * mml_rng_normal(rng);
    }
    rc = mml_wav_save(dst, a.samples, a.n, a.rate);
    mml_audio_free(&a);
    return rc;
}

static mml_status write_readme(const mml_avdigits_options *o, const char *tmp, int components)
{
    char path[4200], text[4096], snr[64], energy[256];
    if (isnan(o->audio_snr_db)) snprintf(snr, sizeof snr, "none");
    else snprintf(snr, sizeof snr, "white noise at %g dB SNR", o->audio_snr_db);
    if (o->image_energy_removed > 0)
        snprintf(energy, sizeof energy, "PCA keeping the %d leading components within %g of the variance, mean not "
                 "added back (as AV-MNIST), rescaled to 0-255 by the training range", components, 1.0 - o->image_energy_removed);
    else snprintf(energy, sizeof energy, "none");
    snprintf(path, sizeof path, "%.4000s/README.md", tmp);
    snprintf(text, sizeof text,
             "# avdigits\n\nBuilt by `mml data avdigits` (seed %llu): %d train, %d val, %d test samples, each an MNIST\n"
             "digit image (28x28 PNG), a Free Spoken Digit recording of the same digit (8 kHz WAV) and the digit's\n"
             "word as text; `label` is the digit, `speaker` the FSDD speaker.\n\n"
             "- Images: the MNIST test set (`mnist-t10k`, 10,000 images; Yann LeCun, Corinna Cortes, Christopher\n"
             "  J.C. Burges; CC BY-SA 3.0), split by the seed. Energy removal: %s.\n"
             "- Audio: FSDD (Zohar Jackson et al., CC BY-SA 4.0), its official split (recordings 0-4 test, 5-49\n"
             "  train and val; with a held-out speaker: %s), a random recording of the same digit per image.\n  Degradation: %s.\n"
             "- Text: the digit's English word.\n\nThis derived data is shared under CC BY-SA 4.0.\n",
             (unsigned long long)o->seed, N_TRAIN, N_VAL, N_TEST, o->holdout_speaker ? o->holdout_speaker : "none", energy, snr);
    return write_text(path, text);
}

/* FSDD's official split (recordings 0-4 test), or one speaker held out for the
 * test split and never heard in training (leave-one-speaker-out). */
static bool in_split(const mml_avdigits_options *o, const recording *r, bool test)
{
    if (o->holdout_speaker) return !strcmp(r->speaker, o->holdout_speaker) == test;
    return (r->index < 5) == test;
}

static mml_status build(const mml_avdigits_options *o, const char *tmp, mml_tensor *img, mml_tensor *lab,
                        recording *recs, int n_rec, const char *fsdd)
{
    mml_rng rng;
    mml_rng_seed(&rng, o->seed);
    int32_t order[10000];
    for (int i = 0; i < 10000; i++) order[i] = i;
    mml_rng_shuffle(&rng, order, 10000);
    uint8_t *pixels = mml_malloc((size_t)img->numel);
    int components = 0;
    mml_status rc = pixels ? prepare_images(o, img, order, pixels, &components) : MML_ERR_NOMEM;
    FILE *jl[3] = { NULL, NULL, NULL };
    const char *splits[3] = { "train", "val", "test" };
    for (int s = 0; rc == MML_OK && s < 3; s++) {
        char p[4200];
        snprintf(p, sizeof p, "%.4000s/%s.jsonl", tmp, splits[s]);
        if (!(jl[s] = fopen(p, "w"))) rc = mml_error(MML_ERR_IO, "%s: cannot write", p);
    }
    mml_progress bar;
    if (o->progress) mml_progress_start(&bar, "avdigits", 10000, "samples");
    for (int i = 0; rc == MML_OK && i < 10000; i++) {
        int split = i < N_TRAIN ? 0 : i < N_TRAIN + N_VAL ? 1 : 2, row = order[i];
        int digit = ((uint8_t *)lab->data)[row];
        int pick = -1, seen = 0; /* uniform over matching recordings, one pass */
        for (int k = 0; k < n_rec; k++)
            if (recs[k].digit == digit && in_split(o, &recs[k], split == 2) && mml_rng_below(&rng, (uint32_t)++seen) == 0)
                pick = k;
        if (pick < 0) {
            rc = mml_error(MML_ERR_FORMAT, "%s: no %s recording of digit %d", fsdd, split == 2 ? "test" : "train", digit);
            break;
        }
        char id[32], rel_img[64], path[4200], rel_audio[128];
        snprintf(id, sizeof id, "%s-%05d", splits[split], i);
        snprintf(rel_img, sizeof rel_img, "images/%s.png", id);
        snprintf(path, sizeof path, "%.4000s/%s", tmp, rel_img);
        mml_tensor *t = mml_tensor_create(MML_U8, 3, (int64_t[]){ 1, 28, 28 }, false);
        if (!t) rc = MML_ERR_NOMEM;
        else {
            memcpy(t->data, pixels + (int64_t)row * 784, 784);
            rc = mml_image_save_png(path, t);
            mml_tensor_free(t);
        }
        if (rc == MML_OK) rc = write_audio(o, fsdd, &recs[pick], tmp, id, &rng, rel_audio, sizeof rel_audio);
        if (rc == MML_OK)
            fprintf(jl[split], "{\"id\": \"%s\", \"image\": \"%s\", \"audio\": \"%s\", \"text\": \"%s\", \"label\": %d, "
                    "\"speaker\": \"%s\", \"split\": \"%s\"}\n", id, rel_img, rel_audio, WORDS[digit], digit,
                    recs[pick].speaker, splits[split]);
        if (o->progress) mml_progress_update(&bar, i + 1, NULL);
    }
    for (int s = 0; s < 3; s++)
        if (jl[s] && fclose(jl[s]) != 0 && rc == MML_OK) rc = mml_error(MML_ERR_IO, "%s: cannot write a manifest", tmp);
    if (o->progress && rc == MML_OK) mml_progress_finish(&bar, "%s", o->out_dir);
    if (rc == MML_OK) rc = write_readme(o, tmp, components);
    mml_free(pixels);
    return rc;
}

mml_status mml_build_avdigits(const mml_avdigits_options *o)
{
    char tmp[4096], path[4200], fsdd[4200];
    struct stat sb;
    if (strlen(o->out_dir) > 3000 || strlen(o->datasets_dir) > 3000) return mml_error(MML_ERR_ARG, "avdigits: path too long");
    if (stat(o->out_dir, &sb) == 0) return mml_error(MML_ERR_IO, "%s: already exists; remove it or choose another --out", o->out_dir);
    if (!(o->image_energy_removed >= 0 && o->image_energy_removed < 1))
        return mml_error(MML_ERR_ARG, "image energy removed must be in [0, 1)");
    snprintf(tmp, sizeof tmp, "%.3000s.tmp", o->out_dir);
    snprintf(fsdd, sizeof fsdd, "%.3000s/fsdd/recordings", o->datasets_dir);
    snprintf(path, sizeof path, "%.3000s/mnist-t10k/t10k-images-idx3-ubyte.gz", o->datasets_dir);
    mml_tensor *img = mml_idx_load(path), *lab = NULL;
    snprintf(path, sizeof path, "%.3000s/mnist-t10k/t10k-labels-idx1-ubyte.gz", o->datasets_dir);
    if (img) lab = mml_idx_load(path);
    recording *recs = mml_malloc(MAX_RECORDINGS * sizeof *recs);
    int n_rec = 0;
    mml_status rc = !img || !lab ? mml_last_status() : !recs ? MML_ERR_NOMEM : MML_OK;
    if (rc == MML_OK && (img->numel != 10000 * 784 || lab->numel != 10000 || img->dtype != MML_U8 || lab->dtype != MML_U8))
        rc = mml_error(MML_ERR_FORMAT, "%s/mnist-t10k: expected 10,000 28x28 images and labels", o->datasets_dir);
    if (rc == MML_OK) rc = list_fsdd(fsdd, recs, &n_rec);
    bool found = !o->holdout_speaker;
    for (int k = 0; rc == MML_OK && o->holdout_speaker && k < n_rec; k++) found |= !strcmp(recs[k].speaker, o->holdout_speaker);
    if (rc == MML_OK && !found) rc = mml_error(MML_ERR_ARG, "%s: no recordings of speaker '%s'", fsdd, o->holdout_speaker);
    const char *subs[] = { "images", "audio" };
    if (rc == MML_OK) rc = mml_file_fresh_dir(tmp, subs, 2);
    if (rc == MML_OK) rc = build(o, tmp, img, lab, recs, n_rec, fsdd);
    rc = mml_file_commit_dir(rc, tmp, o->out_dir);
    mml_tensor_free(img);
    mml_tensor_free(lab);
    mml_free(recs);
    return rc;
}
