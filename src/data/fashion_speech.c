/* The fashion-speech builder: Fashion-MNIST images, the class name spoken by
 * espeak-ng, and a templated description. Synthesis is the slow part, so a
 * pool of utterances per class is made once and samples draw from it; the
 * test split's utterances use voices the training split never hears, so the
 * audio task measures generalisation to new speakers, not memory. */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "mml/alloc.h"
#include "mml/audio.h"
#include "mml/builders.h"
#include "mml/idx.h"
#include "mml/image.h"
#include "mml/progress.h"
#include "mml/rng.h"

extern char **environ;

#define N_CLASSES 10
#define RATE 16000

static const char *const CLASS[N_CLASSES] = { "t-shirt", "trouser", "pullover", "dress", "coat",
                                              "sandal", "shirt", "sneaker", "bag", "ankle-boot" };
static const char *const SPOKEN[N_CLASSES] = { "t-shirt", "trousers", "pullover", "dress", "coat",
                                               "sandal", "shirt", "sneaker", "bag", "ankle boot" };
static const char *const SYNONYMS[N_CLASSES][4] = {
    { "t-shirt", "tee", "top", "tee shirt" },      { "trousers", "pants", "slacks", "jeans" },
    { "pullover", "sweater", "jumper", "sweatshirt" }, { "dress", "gown", "frock", "sundress" },
    { "coat", "jacket", "overcoat", "parka" },     { "sandal", "flip-flop", "slide", "open shoe" },
    { "shirt", "blouse", "button-down", "dress shirt" }, { "sneaker", "trainer", "running shoe", "tennis shoe" },
    { "bag", "handbag", "purse", "tote" },         { "ankle boot", "boot", "bootie", "chelsea boot" },
};
static const char *const ADJECTIVES[] = { "plain", "dark", "light", "striped", "casual", "classic", "worn", "new" };
static const char *const TEMPLATES[] = { "a photo of a %s %s", "a %s %s", "someone selling a %s %s",
                                         "a picture of a %s %s on a white background", "this is a %s %s" };
/* Accents and voice variants; the test split's voices are disjoint from training's. */
static const char *const TRAIN_LANGS[] = { "en-us", "en-gb", "en-029", "en-gb-scotland" };
static const char *const TRAIN_VARIANTS[] = { "m1", "m3", "f2", "f4" };
static const char *const TEST_LANGS[] = { "en-gb-x-rp", "en-gb-x-gbcwmd" };
static const char *const TEST_VARIANTS[] = { "m2", "f1", "f3" };
#define N_TRAIN_VOICES 16
#define N_TEST_VOICES 6

static mml_status espeak(const char *voice, int speed, int pitch, const char *text, const char *wav)
{
    char s[16], p[16];
    snprintf(s, sizeof s, "%d", speed);
    snprintf(p, sizeof p, "%d", pitch);
    char *argv[] = { "espeak-ng", "-v", (char *)voice, "-s", s, "-p", p, "-w", (char *)wav, (char *)text, NULL };
    pid_t pid;
    int rc = posix_spawnp(&pid, "espeak-ng", NULL, NULL, argv, environ), status = 0;
    if (rc != 0)
        return mml_error(MML_ERR_IO, "espeak-ng: cannot run it (%s); install Debian's espeak-ng package", strerror(rc));
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return mml_error(MML_ERR_IO, "espeak-ng -v %s '%s' failed (status %d)", voice, text, status);
    return MML_OK;
}

/* One pool utterance: synthesise, resample to 16 kHz, write. */
static mml_status utterance(const char *tmp, int c, int k, int n_train_voices, mml_rng *rng, char *rel, size_t cap)
{
    bool test = k >= n_train_voices;
    int v = test ? k - n_train_voices : k;
    char voice[64], raw[4200], out[4200];
    if (test) snprintf(voice, sizeof voice, "%s+%s", TEST_LANGS[v / 3], TEST_VARIANTS[v % 3]);
    else snprintf(voice, sizeof voice, "%s+%s", TRAIN_LANGS[v / 4], TRAIN_VARIANTS[v % 4]);
    int speed = 130 + (int)mml_rng_below(rng, 60), pitch = 30 + (int)mml_rng_below(rng, 40);
    snprintf(raw, sizeof raw, "%.4000s/audio/raw.wav", tmp);
    snprintf(rel, cap, "audio/%s-%02d.wav", CLASS[c], k);
    snprintf(out, sizeof out, "%.4000s/%s", tmp, rel);
    mml_status rc = espeak(voice, speed, pitch, SPOKEN[c], raw);
    mml_audio a = { 0 };
    if (rc == MML_OK) rc = mml_wav_load(raw, &a);
    if (rc == MML_OK && a.rate != RATE) rc = mml_audio_resample(&a, RATE);
    if (rc == MML_OK) rc = mml_wav_save(out, a.samples, a.n, RATE);
    mml_audio_free(&a);
    remove(raw);
    return rc;
}

static mml_status write_readme(const mml_fashion_speech_options *o, const char *tmp)
{
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/README.md", tmp);
    FILE *f = fopen(path, "w");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot write", path);
    fprintf(f,
            "# fashion-speech\n\nBuilt by `mml data fashion-speech` (seed %llu): %d train, %d val, %d test samples. Each\n"
            "sample is a Fashion-MNIST image (28x28 PNG), its class name spoken by espeak-ng (16 kHz mono WAV) and a\n"
            "short description from templates with synonyms; all three share `label` (the class name).\n\n"
            "- Images: Fashion-MNIST (Zalando Research, MIT licence) from Debian's `dataset-fashion-mnist` in %s;\n"
            "  train and val drawn from its 60,000 training images, test from its 10,000 test images.\n"
            "- Audio: `espeak-ng` (GPL-3; its output is not covered), a pool of %d utterances per class:\n"
            "  %d training voices (accents en-us, en-gb, en-029, en-gb-scotland x variants m1, m3, f2, f4) for\n"
            "  train and val, %d held-out voices (en-gb-x-rp, en-gb-x-gbcwmd x m2, f1, f3) for test; speed 130-189\n"
            "  words/min and pitch 30-69 drawn by the seed; resampled from 22,050 Hz to 16 kHz.\n"
            "- Text: %d templates, 4 synonyms per class, %d adjectives.\n\nThe same seed gives the same files.\n",
            (unsigned long long)o->seed, (int)o->n_train, (int)o->n_val, (int)o->n_test, o->fashion_dir,
            N_TRAIN_VOICES + N_TEST_VOICES, N_TRAIN_VOICES, N_TEST_VOICES, (int)(sizeof TEMPLATES / sizeof *TEMPLATES),
            (int)(sizeof ADJECTIVES / sizeof *ADJECTIVES));
    return fclose(f) == 0 ? MML_OK : mml_error(MML_ERR_IO, "%s: cannot write", path);
}

static mml_tensor *load_idx(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/%s", dir, name);
    return mml_idx_load(path);
}

/* Indices [0, n) shuffled; the first k are used. */
static int32_t *shuffled(int64_t n, mml_rng *rng)
{
    int32_t *p = mml_malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; p && i < n; i++) p[i] = (int32_t)i;
    if (p) mml_rng_shuffle(rng, p, (uint32_t)n);
    return p;
}

static mml_status write_sample(FILE *jl, const char *tmp, const char *split, int64_t i, const uint8_t *px, int c,
                               const char *audio, mml_rng *rng)
{
    char id[48], rel[96], path[4200], text[160];
    snprintf(id, sizeof id, "%s-%05lld", split, (long long)i);
    snprintf(rel, sizeof rel, "images/%s.png", id);
    snprintf(path, sizeof path, "%.4000s/%s", tmp, rel);
    mml_tensor *t = mml_tensor_create(MML_U8, 3, (int64_t[]){ 1, 28, 28 }, false);
    if (!t) return MML_ERR_NOMEM;
    memcpy(t->data, px, 784);
    mml_status rc = mml_image_save_png(path, t);
    mml_tensor_free(t);
    const char *tpl = TEMPLATES[mml_rng_below(rng, sizeof TEMPLATES / sizeof *TEMPLATES)];
    snprintf(text, sizeof text, tpl, ADJECTIVES[mml_rng_below(rng, sizeof ADJECTIVES / sizeof *ADJECTIVES)],
             SYNONYMS[c][mml_rng_below(rng, 4)]);
    if (rc == MML_OK)
        fprintf(jl, "{\"id\": \"%s\", \"image\": \"%s\", \"audio\": \"%s\", \"text\": \"%s\", \"label\": \"%s\", \"split\": \"%s\"}\n",
                id, rel, audio, text, CLASS[c], split);
    return rc;
}

static mml_status build(const mml_fashion_speech_options *o, const char *tmp, mml_tensor *img[2], mml_tensor *lab[2])
{
    mml_rng rng;
    mml_rng_seed(&rng, o->seed);
    static char pool[N_CLASSES][N_TRAIN_VOICES + N_TEST_VOICES][64];
    mml_status rc = MML_OK;
    mml_progress bar;
    int n_tr = o->few_voices ? 2 : N_TRAIN_VOICES, n_te = o->few_voices ? 1 : N_TEST_VOICES, per = n_tr + n_te;
    if (o->progress) mml_progress_start(&bar, "fashion-speech: speech", N_CLASSES * per, "utterances");
    for (int c = 0; rc == MML_OK && c < N_CLASSES; c++)
        for (int k = 0; rc == MML_OK && k < per; k++) {
            rc = utterance(tmp, c, k, n_tr, &rng, pool[c][k], sizeof pool[c][k]);
            if (o->progress) mml_progress_update(&bar, c * per + k + 1, NULL);
        }
    if (rc != MML_OK) return rc;
    if (o->progress) mml_progress_finish(&bar, "done");
    const char *splits[3] = { "train", "val", "test" };
    int64_t counts[3] = { o->n_train, o->n_val, o->n_test };
    int32_t *order[2] = { shuffled(img[0]->shape[0], &rng), shuffled(img[1]->shape[0], &rng) };
    if (!order[0] || !order[1]) rc = MML_ERR_NOMEM;
    if (o->progress) mml_progress_start(&bar, "fashion-speech: samples", o->n_train + o->n_val + o->n_test, "samples");
    int64_t done = 0;
    for (int s = 0; rc == MML_OK && s < 3; s++) {
        char p[4200];
        snprintf(p, sizeof p, "%.4000s/%s.jsonl", tmp, splits[s]);
        FILE *jl = fopen(p, "w");
        if (!jl) rc = mml_error(MML_ERR_IO, "%s: cannot write", p);
        int src = s == 2;
        for (int64_t i = 0; rc == MML_OK && i < counts[s]; i++) {
            int64_t row = order[src][s == 1 ? o->n_train + i : i];
            int c = ((const uint8_t *)lab[src]->data)[row];
            int k = s == 2 ? n_tr + (int)mml_rng_below(&rng, (uint32_t)n_te) : (int)mml_rng_below(&rng, (uint32_t)n_tr);
            if (c >= N_CLASSES) rc = mml_error(MML_ERR_FORMAT, "%s: label %d out of range", o->fashion_dir, c);
            else rc = write_sample(jl, tmp, splits[s], i, (const uint8_t *)img[src]->data + row * 784, c, pool[c][k], &rng);
            if (o->progress) mml_progress_update(&bar, ++done, NULL);
        }
        if (jl && fclose(jl) != 0 && rc == MML_OK) rc = mml_error(MML_ERR_IO, "%s: cannot write", p);
    }
    if (rc == MML_OK && o->progress) mml_progress_finish(&bar, "%s", o->out_dir);
    mml_free(order[0]);
    mml_free(order[1]);
    return rc == MML_OK ? write_readme(o, tmp) : rc;
}

static mml_status check_data(const mml_fashion_speech_options *o, mml_tensor *img[2], mml_tensor *lab[2])
{
    static const int64_t want[2] = { 60000, 10000 };
    for (int s = 0; s < 2; s++) {
        if (!img[s] || !lab[s]) return mml_last_status();
        if (img[s]->dtype != MML_U8 || img[s]->ndim != 3 || img[s]->shape[0] != want[s] || img[s]->shape[1] != 28 ||
            img[s]->shape[2] != 28 || lab[s]->numel != want[s])
            return mml_error(MML_ERR_FORMAT, "%s: expected Fashion-MNIST (%lld 28x28 images and labels)", o->fashion_dir,
                             (long long)want[s]);
    }
    if (o->n_train + o->n_val > 60000 || o->n_test > 10000 || o->n_train < 1 || o->n_val < 0 || o->n_test < 1)
        return mml_error(MML_ERR_ARG, "fashion-speech: train + val must be in [1, 60000] and test in [1, 10000]");
    return MML_OK;
}

mml_status mml_build_fashion_speech(const mml_fashion_speech_options *o)
{
    char tmp[4096], p[4200];
    struct stat sb;
    if (strlen(o->out_dir) > 3000 || strlen(o->fashion_dir) > 3000) return mml_error(MML_ERR_ARG, "fashion-speech: path too long");
    if (stat(o->out_dir, &sb) == 0) return mml_error(MML_ERR_IO, "%s: already exists; remove it or choose another --out", o->out_dir);
    mml_tensor *img[2] = { load_idx(o->fashion_dir, "train-images-idx3-ubyte.gz"), NULL }, *lab[2] = { NULL, NULL };
    if (img[0]) lab[0] = load_idx(o->fashion_dir, "train-labels-idx1-ubyte.gz");
    if (lab[0]) img[1] = load_idx(o->fashion_dir, "t10k-images-idx3-ubyte.gz");
    if (img[1]) lab[1] = load_idx(o->fashion_dir, "t10k-labels-idx1-ubyte.gz");
    mml_status rc = check_data(o, img, lab);
    if (rc != MML_OK) mml_error_prefix("fashion-speech (Debian's dataset-fashion-mnist package): ");
    snprintf(tmp, sizeof tmp, "%.3000s.tmp", o->out_dir);
    if (rc == MML_OK) {
        snprintf(p, sizeof p, "rm -rf '%s'", tmp); /* leftovers of an interrupted build */
        if (system(p) != 0) rc = mml_error(MML_ERR_IO, "%s: cannot remove", tmp);
    }
    const char *subs[] = { "", "/images", "/audio" };
    for (int i = 0; rc == MML_OK && i < 3; i++) {
        snprintf(p, sizeof p, "%.4000s%s", tmp, subs[i]);
        if (mkdir(p, 0755) != 0) rc = mml_error(MML_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    }
    if (rc == MML_OK) rc = build(o, tmp, img, lab);
    if (rc == MML_OK && rename(tmp, o->out_dir) != 0) rc = mml_error(MML_ERR_IO, "%s: cannot rename: %s", tmp, strerror(errno));
    if (rc != MML_OK && stat(tmp, &sb) == 0) {
        snprintf(p, sizeof p, "rm -rf '%s'", tmp);
        int ignored = system(p); /* the error already says what failed */
        (void)ignored;
    }
    for (int s = 0; s < 2; s++) {
        mml_tensor_free(img[s]);
        mml_tensor_free(lab[s]);
    }
    return rc;
}
