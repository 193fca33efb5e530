/* The fashion-speech builder: Fashion-MNIST images, the class name spoken by
 * espeak-ng, and a templated description. Synthesis is the slow part, so a
 * pool of utterances per class is made once (in parallel, each utterance with
 * its own seeded generator so the pool does not depend on the thread count)
 * and samples draw from it; the test split's utterances use voices the
 * training split never hears, so the audio task measures generalisation to
 * new speakers, not memory. Labels are "<id>-<name>" so that sorting the names
 * (how manifests map name labels to class indices) gives Fashion-MNIST's
 * order. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/audio.h"
#include "mml/builders.h"
#include "mml/idx.h"
#include "mml/image.h"
#include "mml/progress.h"
#include "mml/rng.h"
#include "mml/threads.h"

extern char **environ;

#define N_CLASSES 10
#define RATE 16000
#define N_SYN 4
#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

static const char *const CLASS[N_CLASSES] = { "0-t-shirt", "1-trouser", "2-pullover", "3-dress", "4-coat",
                                              "5-sandal", "6-shirt", "7-sneaker", "8-bag", "9-ankle-boot" };
static const char *const SPOKEN[N_CLASSES] = { "t-shirt", "trousers", "pullover", "dress", "coat",
                                               "sandal", "shirt", "sneaker", "bag", "ankle boot" };
static const char *const SYNONYMS[N_CLASSES][N_SYN] = {
    { "t-shirt", "tee", "top", "tee shirt" },      { "trousers", "pants", "slacks", "jeans" },
    { "pullover", "sweater", "jumper", "sweatshirt" }, { "dress", "gown", "frock", "sundress" },
    { "coat", "jacket", "overcoat", "parka" },     { "sandal", "flip-flop", "slide", "open shoe" },
    { "shirt", "blouse", "button-down", "dress shirt" }, { "sneaker", "trainer", "running shoe", "tennis shoe" },
    { "bag", "handbag", "purse", "tote" },         { "ankle boot", "boot", "bootie", "chelsea boot" },
};
static const char *const ADJECTIVES[] = { "plain", "dark", "light", "striped", "casual", "classic", "worn", "new" };
static const char *const TEMPLATES[] = { "a photo of a %s %s", "a %s %s", "someone selling a %s %s",
                                         "a picture of a %s %s on a white background", "this is a %s %s" };
/* Accents x voice variants; the test split's voices are disjoint from training's. */
static const char *const TRAIN_LANGS[] = { "en-us", "en-gb", "en-029", "en-gb-scotland" };
static const char *const TRAIN_VARIANTS[] = { "m1", "m3", "f2", "f4" };
static const char *const TEST_LANGS[] = { "en-gb-x-rp", "en-gb-x-gbcwmd" };
static const char *const TEST_VARIANTS[] = { "m2", "f1", "f3" };
#define N_TRAIN_VOICES (COUNT(TRAIN_LANGS) * COUNT(TRAIN_VARIANTS))
#define N_TEST_VOICES (COUNT(TEST_LANGS) * COUNT(TEST_VARIANTS))
#define MAX_PER_CLASS 32
#define SPEED_MIN 130
#define SPEED_SPAN 60
#define PITCH_MIN 30
#define PITCH_SPAN 40

typedef struct utterance {
    char rel[64], voice[48];
    int speed, pitch;
    int64_t bytes;
    mml_status status;
    char error[256]; /* the worker thread's message (errors are per thread) */
} utterance;

typedef struct synth_pool {
    const char *tmp;
    uint64_t seed;
    int n_train_voices, per_class;
    utterance *u;          /* N_CLASSES * per_class */
    atomic_int done;
    mml_progress *bar;     /* drawn by thread 0 only */
} synth_pool;

/* Runs argv[0] from PATH without a shell; with `out`, the start of its
 * stdout is read into out[cap] through a pipe. */
static mml_status run(char *const argv[], char *out, size_t cap)
{
    int fd[2] = { -1, -1 };
    if (out && pipe2(fd, O_CLOEXEC) != 0) /* other children must not hold it open */
        return mml_error(MML_ERR_IO, "%s: cannot make a pipe: %s", argv[0], strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out) {
        posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
        posix_spawn_file_actions_addclose(&fa, fd[0]);
        posix_spawn_file_actions_addclose(&fa, fd[1]);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), status = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (out) {
        close(fd[1]);
        size_t n = 0;
        for (ssize_t r; rc == 0 && n + 1 < cap && (r = read(fd[0], out + n, cap - 1 - n)) > 0;) n += (size_t)r;
        out[n] = 0;
        close(fd[0]); /* the child gets SIGPIPE if it writes more */
    }
    if (rc != 0)
        return mml_error(MML_ERR_IO, "%s: cannot run it (%s); install Debian's espeak-ng package", argv[0], strerror(rc));
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return mml_error(MML_ERR_IO, "%s: did not finish (status %d)", argv[0], status);
    if (WEXITSTATUS(status) == 127) /* exec failed in the child */
        return mml_error(MML_ERR_IO, "%s: not found; install Debian's espeak-ng package", argv[0]);
    if (WEXITSTATUS(status) != 0) return mml_error(MML_ERR_IO, "%s: exited with status %d", argv[0], WEXITSTATUS(status));
    return MML_OK;
}

/* Pool entry u: voice by index, speed and pitch from a generator of its own;
 * synthesised at 22,050 Hz, resampled to 16 kHz. */
static mml_status synthesise(const synth_pool *p, int u)
{
    utterance *x = &p->u[u];
    int c = u / p->per_class, k = u % p->per_class, test = k >= p->n_train_voices, v = test ? k - p->n_train_voices : k;
    if (test) snprintf(x->voice, sizeof x->voice, "%s+%s", TEST_LANGS[v / COUNT(TEST_VARIANTS)], TEST_VARIANTS[v % COUNT(TEST_VARIANTS)]);
    else snprintf(x->voice, sizeof x->voice, "%s+%s", TRAIN_LANGS[v / COUNT(TRAIN_VARIANTS)], TRAIN_VARIANTS[v % COUNT(TRAIN_VARIANTS)]);
    mml_rng rng;
    mml_rng_seed(&rng, p->seed * 0x9E3779B97F4A7C15ull + (uint64_t)u);
    x->speed = SPEED_MIN + (int)mml_rng_below(&rng, SPEED_SPAN);
    x->pitch = PITCH_MIN + (int)mml_rng_below(&rng, PITCH_SPAN);
    char raw[4200], out[4200], s[16], pt[16];
    snprintf(x->rel, sizeof x->rel, "audio/%s-%02d.wav", CLASS[c], k);
    snprintf(raw, sizeof raw, "%.4000s/audio/raw-%d.wav", p->tmp, u);
    snprintf(out, sizeof out, "%.4000s/%s", p->tmp, x->rel);
    snprintf(s, sizeof s, "%d", x->speed);
    snprintf(pt, sizeof pt, "%d", x->pitch);
    char *argv[] = { "espeak-ng", "-v", x->voice, "-s", s, "-p", pt, "-w", raw, (char *)SPOKEN[c], NULL };
    mml_status rc = run(argv, NULL, 0);
    mml_audio a = { 0 };
    if (rc == MML_OK) rc = mml_wav_load(raw, &a);
    if (rc == MML_OK && a.rate != RATE) rc = mml_audio_resample(&a, RATE);
    if (rc == MML_OK) rc = mml_wav_save(out, a.samples, a.n, RATE);
    mml_audio_free(&a);
    remove(raw);
    struct stat sb;
    x->bytes = rc == MML_OK && stat(out, &sb) == 0 ? (int64_t)sb.st_size : 0;
    return rc;
}

static void synth_range(void *arg, int64_t begin, int64_t end, int thread)
{
    synth_pool *p = arg;
    for (int64_t u = begin; u < end; u++) {
        utterance *x = &p->u[u];
        x->status = synthesise(p, (int)u);
        if (x->status != MML_OK) snprintf(x->error, sizeof x->error, "%s (voice %s): %s", x->rel, x->voice, mml_last_error());
        int done = atomic_fetch_add(&p->done, 1) + 1;
        if (p->bar && thread == 0) mml_progress_update(p->bar, done, NULL);
    }
}

static mml_status make_pool(const mml_fashion_speech_options *o, const char *tmp, utterance *u, int n_tr, int per)
{
    mml_progress bar;
    synth_pool p = { .tmp = tmp, .seed = o->seed, .n_train_voices = n_tr, .per_class = per, .u = u, .bar = o->progress ? &bar : NULL };
    atomic_init(&p.done, 0);
    if (o->progress) mml_progress_start(&bar, "fashion-speech: speech", N_CLASSES * per, "utterances");
    mml_parallel_for(N_CLASSES * per, 1, synth_range, &p);
    for (int i = 0; i < N_CLASSES * per; i++)
        if (u[i].status != MML_OK) return mml_error(u[i].status, "fashion-speech: %s", u[i].error);
    if (o->progress) mml_progress_finish(&bar, "%d utterances", N_CLASSES * per);
    return MML_OK;
}

/* "eSpeak NG text-to-speech: 1.51" from `espeak-ng --version`; also tells
 * early whether espeak-ng can be run at all. */
static mml_status espeak_version(char *out, size_t cap)
{
    char *argv[] = { "espeak-ng", "--version", NULL };
    mml_status rc = run(argv, out, cap);
    char *data = strstr(out, "  Data at:"); /* the rest names a directory */
    out[data ? (size_t)(data - out) : strcspn(out, "\n")] = 0;
    return rc;
}

/* A Debian package's installed version from dpkg's status file. */
static void deb_version(const char *package, char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/var/lib/dpkg/status", "r");
    if (!f) return;
    char line[512], want[128];
    snprintf(want, sizeof want, "Package: %s\n", package);
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Package: ", 9)) in = !strcmp(line, want);
        else if (in && !strncmp(line, "Version: ", 9)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, cap, "%.80s", line + 9);
            break;
        }
    }
    fclose(f);
}

typedef struct tally {
    int64_t count[3][N_CLASSES];
    int64_t image_bytes, audio_bytes;
    int n_utterances;
} tally;

static void readme_counts(FILE *f, const tally *t)
{
    fprintf(f, "| class (label) | train | val | test |\n|---|---:|---:|---:|\n");
    int64_t sum[3] = { 0, 0, 0 };
    for (int c = 0; c < N_CLASSES; c++) {
        fprintf(f, "| %s | %lld | %lld | %lld |\n", CLASS[c], (long long)t->count[0][c], (long long)t->count[1][c],
                (long long)t->count[2][c]);
        for (int s = 0; s < 3; s++) sum[s] += t->count[s][c];
    }
    fprintf(f, "| all | %lld | %lld | %lld |\n\n", (long long)sum[0], (long long)sum[1], (long long)sum[2]);
}

static mml_status write_readme(const mml_fashion_speech_options *o, const char *tmp, const char *espeak, const tally *t,
                               int n_tr, int n_te)
{
    char path[4200], deb_espeak[96], deb_fashion[96];
    deb_version("espeak-ng", deb_espeak, sizeof deb_espeak);
    deb_version("dataset-fashion-mnist", deb_fashion, sizeof deb_fashion);
    snprintf(path, sizeof path, "%.4000s/README.md", tmp);
    FILE *f = fopen(path, "w");
    if (!f) return mml_error(MML_ERR_IO, "%s: cannot write", path);
    fprintf(f,
            "# fashion-speech\n\nBuilt by `mml data fashion-speech` (seed %llu). Each sample is a Fashion-MNIST image (28x28\n"
            "grey PNG), its class name spoken by espeak-ng (16 kHz mono 16-bit WAV) and a short description from\n"
            "templates with synonyms; all three share `label`, the class as `<Fashion-MNIST id>-<name>` so that\n"
            "name order is Fashion-MNIST's order. `voice` names the espeak-ng voice of the audio.\n\n",
            (unsigned long long)o->seed);
    readme_counts(f, t);
    fprintf(f, "Sizes: %lld bytes of images, %lld bytes of audio (%d utterances).\n\n", (long long)t->image_bytes,
            (long long)t->audio_bytes, t->n_utterances);
    fprintf(f, "- Images: Fashion-MNIST (Zalando Research, MIT licence) from Debian's `dataset-fashion-mnist`\n"
               "  %s in %s; train and val drawn by the seed from its 60,000 training\n"
               "  images, test from its 10,000 test images, balanced by class (`source` names the file and row).\n",
            deb_fashion, o->fashion_dir);
    fprintf(f, "- Audio: %s (Debian's `espeak-ng` %s; GPL-3, which does not cover its\n"
               "  output), a pool of %d utterances per class: %d training voices (accents", espeak, deb_espeak, n_tr + n_te, n_tr);
    for (int i = 0; i < COUNT(TRAIN_LANGS); i++) fprintf(f, "%s %s", i ? "," : "", TRAIN_LANGS[i]);
    fprintf(f, " x variants");
    for (int i = 0; i < COUNT(TRAIN_VARIANTS); i++) fprintf(f, "%s %s", i ? "," : "", TRAIN_VARIANTS[i]);
    fprintf(f, ")\n  for train and val, %d held-out voices (", n_te);
    for (int i = 0; i < COUNT(TEST_LANGS); i++) fprintf(f, "%s%s", i ? ", " : "", TEST_LANGS[i]);
    fprintf(f, " x");
    for (int i = 0; i < COUNT(TEST_VARIANTS); i++) fprintf(f, "%s %s", i ? "," : "", TEST_VARIANTS[i]);
    fprintf(f, ") for test;\n  speed %d-%d words/min and pitch %d-%d drawn by the seed; synthesised at 22,050 Hz and\n"
               "  resampled to 16 kHz. Each image gets a pool utterance of its class drawn by the seed.\n"
               "- Text: %d templates, %d synonyms per class, %d adjectives.\n\nThe same seed gives the same files.\n",
            SPEED_MIN, SPEED_MIN + SPEED_SPAN - 1, PITCH_MIN, PITCH_MIN + PITCH_SPAN - 1, COUNT(TEMPLATES), N_SYN,
            COUNT(ADJECTIVES));
    return fclose(f) == 0 ? MML_OK : mml_error(MML_ERR_IO, "%s: cannot write", path);
}

static mml_tensor *load_idx(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/%s", dir, name);
    return mml_idx_load(path);
}

/* Rows of `labels` for the splits [first, first + n_splits), n[s] each,
 * balanced by class (the remainder goes to different classes per split so
 * no class runs out), in the order of a shuffle of all rows. */
static mml_status pick_rows(const mml_tensor *labels, const int64_t *n, int n_splits, mml_rng *rng, int32_t **rows)
{
    int64_t total = labels->numel, quota[2][N_CLASSES], offset = 0, fill[2] = { 0, 0 };
    for (int s = 0; s < n_splits; s++) {
        for (int c = 0; c < N_CLASSES; c++) quota[s][c] = n[s] / N_CLASSES + ((c - offset + N_CLASSES) % N_CLASSES < n[s] % N_CLASSES);
        offset = (offset + n[s]) % N_CLASSES;
        if (!(rows[s] = mml_malloc((size_t)(n[s] ? n[s] : 1) * sizeof(int32_t)))) return MML_ERR_NOMEM;
    }
    int32_t *order = mml_malloc((size_t)total * sizeof *order);
    if (!order) return MML_ERR_NOMEM;
    for (int64_t i = 0; i < total; i++) order[i] = (int32_t)i;
    mml_rng_shuffle(rng, order, total);
    for (int64_t i = 0; i < total; i++) {
        int c = ((const uint8_t *)labels->data)[order[i]];
        for (int s = 0; s < n_splits; s++)
            if (c < N_CLASSES && quota[s][c] > 0) {
                quota[s][c]--;
                rows[s][fill[s]++] = order[i];
                break;
            }
    }
    mml_free(order);
    for (int s = 0; s < n_splits; s++)
        if (fill[s] != n[s]) return mml_error(MML_ERR_FORMAT, "fashion-speech: too few images of some class for %lld samples", (long long)n[s]);
    return MML_OK;
}

static mml_status write_sample(FILE *jl, const char *tmp, const char *split, int64_t i, const uint8_t *px, int c,
                               int64_t row, const char *source, const utterance *u, mml_rng *rng, tally *t)
{
    char id[48], rel[96], path[4200], text[160];
    snprintf(id, sizeof id, "%s-%05lld", split, (long long)i);
    snprintf(rel, sizeof rel, "images/%s.png", id);
    snprintf(path, sizeof path, "%.4000s/%s", tmp, rel);
    mml_tensor *img = mml_tensor_create(MML_U8, 3, (int64_t[]){ 1, 28, 28 }, false);
    if (!img) return MML_ERR_NOMEM;
    memcpy(img->data, px, 784);
    mml_status rc = mml_image_save_png(path, img);
    mml_tensor_free(img);
    struct stat sb;
    if (rc == MML_OK && stat(path, &sb) == 0) t->image_bytes += sb.st_size;
    const char *tpl = TEMPLATES[mml_rng_below(rng, COUNT(TEMPLATES))];
    snprintf(text, sizeof text, tpl, ADJECTIVES[mml_rng_below(rng, COUNT(ADJECTIVES))], SYNONYMS[c][mml_rng_below(rng, N_SYN)]);
    if (rc == MML_OK)
        fprintf(jl, "{\"id\": \"%s\", \"image\": \"%s\", \"audio\": \"%s\", \"text\": \"%s\", \"label\": \"%s\", "
                    "\"voice\": \"%s\", \"source\": \"%s:%lld\", \"split\": \"%s\"}\n",
                id, rel, u->rel, text, CLASS[c], u->voice, source, (long long)row, split);
    return rc;
}

static mml_status write_split(const mml_fashion_speech_options *o, const char *tmp, int s, const int32_t *rows,
                              int64_t n, const mml_tensor *img, const mml_tensor *lab, const utterance *pool, int n_tr,
                              int per, mml_rng *rng, tally *t, mml_progress *bar, int64_t *done)
{
    static const char *const SPLITS[3] = { "train", "val", "test" }, *const SOURCE[3] = {
        "train-images-idx3-ubyte", "train-images-idx3-ubyte", "t10k-images-idx3-ubyte" };
    char p[4200];
    snprintf(p, sizeof p, "%.4000s/%s.jsonl", tmp, SPLITS[s]);
    FILE *jl = fopen(p, "w");
    if (!jl) return mml_error(MML_ERR_IO, "%s: cannot write", p);
    mml_status rc = MML_OK;
    for (int64_t i = 0; rc == MML_OK && i < n; i++) {
        int c = ((const uint8_t *)lab->data)[rows[i]];
        int k = s == 2 ? n_tr + (int)mml_rng_below(rng, (uint32_t)(per - n_tr)) : (int)mml_rng_below(rng, (uint32_t)n_tr);
        rc = write_sample(jl, tmp, SPLITS[s], i, (const uint8_t *)img->data + (int64_t)rows[i] * 784, c, rows[i], SOURCE[s],
                          &pool[c * per + k], rng, t);
        t->count[s][c]++;
        if (o->progress) mml_progress_update(bar, ++*done, NULL);
    }
    if (fclose(jl) != 0 && rc == MML_OK) rc = mml_error(MML_ERR_IO, "%s: cannot write", p);
    return rc;
}

static mml_status build(const mml_fashion_speech_options *o, const char *tmp, const char *espeak, mml_tensor *img[2],
                        mml_tensor *lab[2])
{
    int n_tr = o->few_voices ? 2 : N_TRAIN_VOICES, per = n_tr + (o->few_voices ? 1 : N_TEST_VOICES);
    utterance *pool = mml_calloc((size_t)(N_CLASSES * per), sizeof *pool);
    tally *t = mml_calloc(1, sizeof *t);
    int32_t *rows[3] = { NULL, NULL, NULL };
    mml_status rc = pool && t ? make_pool(o, tmp, pool, n_tr, per) : MML_ERR_NOMEM;
    mml_rng rng;
    mml_rng_seed(&rng, o->seed);
    int64_t n[3] = { o->n_train, o->n_val, o->n_test };
    if (rc == MML_OK) rc = pick_rows(lab[0], n, 2, &rng, rows);
    if (rc == MML_OK) rc = pick_rows(lab[1], n + 2, 1, &rng, rows + 2);
    mml_progress bar;
    int64_t done = 0;
    if (rc == MML_OK && o->progress) mml_progress_start(&bar, "fashion-speech: samples", n[0] + n[1] + n[2], "samples");
    for (int s = 0; rc == MML_OK && s < 3; s++)
        rc = write_split(o, tmp, s, rows[s], n[s], img[s == 2], lab[s == 2], pool, n_tr, per, &rng, t, &bar, &done);
    if (rc == MML_OK && o->progress) mml_progress_finish(&bar, "%s", o->out_dir);
    if (rc == MML_OK) {
        t->n_utterances = N_CLASSES * per;
        for (int i = 0; i < N_CLASSES * per; i++) t->audio_bytes += pool[i].bytes;
        rc = write_readme(o, tmp, espeak, t, n_tr, per - n_tr);
    }
    for (int s = 0; s < 3; s++) mml_free(rows[s]);
    mml_free(pool);
    mml_free(t);
    return rc;
}

static mml_status check_data(const mml_fashion_speech_options *o, mml_tensor *img[2], mml_tensor *lab[2])
{
    static const int64_t want[2] = { 60000, 10000 };
    for (int s = 0; s < 2; s++) {
        if (!img[s] || !lab[s]) return mml_last_status();
        if (img[s]->dtype != MML_U8 || img[s]->ndim != 3 || img[s]->shape[0] != want[s] || img[s]->shape[1] != 28 ||
            img[s]->shape[2] != 28 || lab[s]->dtype != MML_U8 || lab[s]->numel != want[s])
            return mml_error(MML_ERR_FORMAT, "%s: expected Fashion-MNIST (%lld 28x28 images and labels)", o->fashion_dir,
                             (long long)want[s]);
    }
    return MML_OK;
}

mml_status mml_build_fashion_speech(const mml_fashion_speech_options *o)
{
    char tmp[4096];
    struct stat sb;
    if (strlen(o->out_dir) > 3000 || strlen(o->fashion_dir) > 3000) return mml_error(MML_ERR_ARG, "fashion-speech: path too long");
    if (o->n_train < 1 || o->n_val < 0 || o->n_test < 1 || o->n_train + o->n_val > 60000 || o->n_test > 10000)
        return mml_error(MML_ERR_ARG, "fashion-speech: train + val must be in [1, 60000] and test in [1, 10000]");
    if (stat(o->out_dir, &sb) == 0) return mml_error(MML_ERR_IO, "%s: already exists; remove it or choose another --out", o->out_dir);
    char espeak[256];
    if (espeak_version(espeak, sizeof espeak) != MML_OK) return mml_last_status();
    mml_tensor *img[2] = { load_idx(o->fashion_dir, "train-images-idx3-ubyte.gz"), NULL }, *lab[2] = { NULL, NULL };
    if (img[0]) lab[0] = load_idx(o->fashion_dir, "train-labels-idx1-ubyte.gz");
    if (lab[0]) img[1] = load_idx(o->fashion_dir, "t10k-images-idx3-ubyte.gz");
    if (img[1]) lab[1] = load_idx(o->fashion_dir, "t10k-labels-idx1-ubyte.gz");
    mml_status rc = check_data(o, img, lab);
    if (rc != MML_OK) mml_error_prefix("fashion-speech (Debian's dataset-fashion-mnist package): ");
    snprintf(tmp, sizeof tmp, "%.3000s.tmp", o->out_dir);
    const char *subs[] = { "images", "audio" };
    if (rc == MML_OK) rc = mml_file_fresh_dir(tmp, subs, 2);
    if (rc == MML_OK) rc = build(o, tmp, espeak, img, lab);
    rc = mml_file_commit_dir(rc, tmp, o->out_dir);
    for (int s = 0; s < 2; s++) {
        mml_tensor_free(img[s]);
        mml_tensor_free(lab[s]);
    }
    return rc;
}
