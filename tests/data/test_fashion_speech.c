/* fashion-speech: a small build is complete, consistent across modalities
 * and with Fashion-MNIST itself, balanced, byte-identical for a seed, and
 * refused cleanly without Fashion-MNIST or espeak-ng. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mml/audio.h"
#include "mml/builders.h"
#include "mml/idx.h"
#include "mml/image.h"
#include "mml/manifest.h"
#include "test.h"

#define FASHION "/usr/share/datasets/fashion-mnist"

/* Fashion-MNIST's class order, and one word of every description of each. */
static const char *const LABELS[10] = { "0-t-shirt", "1-trouser", "2-pullover", "3-dress", "4-coat",
                                        "5-sandal", "6-shirt", "7-sneaker", "8-bag", "9-ankle-boot" };
static const char *const WORDS[10][4] = {
    { "t-shirt", "tee", "top", NULL },        { "trousers", "pants", "slacks", "jeans" },
    { "pullover", "sweater", "jumper", NULL }, { "dress", "gown", "frock", NULL },
    { "coat", "jacket", "parka", NULL },      { "sandal", "flip-flop", "slide", "open shoe" },
    { "shirt", "blouse", "button-down", NULL }, { "sneaker", "trainer", "running shoe", "tennis shoe" },
    { "bag", "handbag", "purse", "tote" },    { "boot", NULL, NULL, NULL },
};

static bool available(void)
{
    struct stat st;
    if (stat(FASHION, &st) != 0 || system("command -v espeak-ng >/dev/null 2>&1") != 0) {
        printf("    (skipped: needs Debian's dataset-fashion-mnist and espeak-ng)\n");
        return false;
    }
    return true;
}

static mml_fashion_speech_options small(const char *out)
{
    return (mml_fashion_speech_options){ .out_dir = out, .fashion_dir = FASHION, .seed = 7, .n_train = 30,
                                         .n_val = 5, .n_test = 12, .few_voices = true };
}

static int class_of(const char *label)
{
    for (int c = 0; c < 10; c++)
        if (label && !strcmp(label, LABELS[c])) return c;
    return -1;
}

static bool describes(const char *text, int c)
{
    for (int k = 0; k < 4 && WORDS[c][k]; k++)
        if (strstr(text, WORDS[c][k])) return true;
    return false;
}

/* The row named by `source` is of the labelled class; where its images are
 * loaded (the test set: the training set's take half a second), the image
 * is that row. */
static bool matches_source(const mml_sample *x, int c, mml_tensor *const img[2], mml_tensor *const lab[2])
{
    const char *src = mml_sample_field(x, "source");
    const char *colon = src ? strchr(src, ':') : NULL;
    if (!colon) return false;
    int set = !strncmp(src, "t10k", 4);
    long row = strtol(colon + 1, NULL, 10);
    if (row < 0 || row >= lab[set]->numel || ((const uint8_t *)lab[set]->data)[row] != c) return false;
    if (!img[set]) return true;
    mml_tensor *t = mml_image_load(x->path[MML_MOD_IMAGE], 0);
    bool same = t && t->numel == 784 && !memcmp(t->data, (const uint8_t *)img[set]->data + row * 784, 784);
    mml_tensor_free(t);
    return same;
}

static void check_split(const char *dir, const char *split, int count, mml_tensor *const img[2], mml_tensor *const lab[2])
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, split);
    mml_manifest *m = NULL;
    CHECK_OK(mml_manifest_load(path, &m));
    if (!m) return;
    CHECK(m->n == count);
    char **classes = NULL;
    int n_classes = mml_manifest_classes(m, "label", &classes);
    CHECK(n_classes == (count < 10 ? count : 10)); /* balanced: every class, in Fashion-MNIST order */
    for (int c = 0; count >= 10 && c < n_classes && c < 10; c++) CHECK(!strcmp(classes[c], LABELS[c]));
    mml_classes_free(classes, n_classes);
    for (int64_t i = 0; i < m->n; i++) {
        const mml_sample *x = &m->samples[i];
        CHECK(x->has[MML_MOD_IMAGE] && x->has[MML_MOD_AUDIO] && x->has[MML_MOD_TEXT]);
        CHECK(x->split && !strcmp(x->split, split));
        int c = class_of(x->label);
        CHECK(c >= 0);
        if (c < 0) continue;
        CHECK(strstr(x->path[MML_MOD_AUDIO], x->label) != NULL); /* a pool utterance of the class */
        CHECK(describes(x->text, c));
        CHECK(matches_source(x, c, img, lab));
        mml_audio au;
        CHECK_OK(mml_wav_load(x->path[MML_MOD_AUDIO], &au));
        double energy = 0;
        for (int64_t k = 0; k < au.n; k++) energy += au.samples[k] * au.samples[k];
        CHECK(au.rate == 16000 && au.n > 4000 && energy > 1.0);
        mml_audio_free(&au);
    }
    mml_manifest_free(m);
}

TEST(fashion_speech_builds_consistent_deterministic_samples)
{
    if (!available()) return;
    char a[1024], b[1024], cmd[3000];
    tst_tmp_path("fs-a", a, sizeof a);
    tst_tmp_path("fs-b", b, sizeof b);
    mml_fashion_speech_options o = small(a);
    CHECK_OK(mml_build_fashion_speech(&o));
    o.out_dir = b;
    CHECK_OK(mml_build_fashion_speech(&o));
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' >/dev/null", a, b);
    CHECK(system(cmd) == 0);
    CHECK(mml_build_fashion_speech(&o) != MML_OK); /* exists */
    mml_tensor *img[2] = { NULL, mml_idx_load(FASHION "/t10k-images-idx3-ubyte.gz") };
    mml_tensor *lab[2] = { mml_idx_load(FASHION "/train-labels-idx1-ubyte.gz"), mml_idx_load(FASHION "/t10k-labels-idx1-ubyte.gz") };
    CHECK(img[1] && lab[0] && lab[1]);
    if (img[1] && lab[0] && lab[1]) {
        check_split(a, "train", 30, img, lab);
        check_split(a, "val", 5, img, lab);
        check_split(a, "test", 12, img, lab);
    }
    for (int s = 0; s < 2; s++) {
        mml_tensor_free(img[s]);
        mml_tensor_free(lab[s]);
    }
}

static void check_refused(const mml_fashion_speech_options *o, const char *says)
{
    CHECK(mml_build_fashion_speech(o) != MML_OK);
    CHECK(strstr(mml_last_error(), says) != NULL);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out_dir);
    struct stat st;
    CHECK(stat(o->out_dir, &st) != 0);
    CHECK(stat(tmp, &st) != 0);
}

TEST(fashion_speech_without_fashion_mnist_is_refused)
{
    char out[1024];
    tst_tmp_path("fs-missing", out, sizeof out);
    mml_fashion_speech_options o = small(out);
    o.fashion_dir = "/nonexistent/fashion";
    check_refused(&o, "dataset-fashion-mnist");
}

TEST(fashion_speech_without_espeak_is_refused)
{
    struct stat st;
    if (stat(FASHION, &st) != 0) {
        printf("    (skipped: needs Debian's dataset-fashion-mnist)\n");
        return;
    }
    char out[1024], *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    tst_tmp_path("fs-no-espeak", out, sizeof out);
    mml_fashion_speech_options o = small(out);
    setenv("PATH", "/nonexistent", 1);
    check_refused(&o, "install Debian's espeak-ng package");
    if (path) setenv("PATH", path, 1);
    else unsetenv("PATH");
    free(path);
}

TEST(fashion_speech_refuses_bad_sizes)
{
    char out[1024];
    tst_tmp_path("fs-sizes", out, sizeof out);
    mml_fashion_speech_options o = small(out);
    o.n_train = 59000;
    o.n_val = 1001;
    check_refused(&o, "train + val");
    o = small(out);
    o.n_test = 0;
    check_refused(&o, "test");
}
