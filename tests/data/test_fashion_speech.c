/* fashion-speech: a small build is complete, consistent across modalities,
 * byte-identical for a seed, and refused cleanly without Fashion-MNIST. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mml/audio.h"
#include "mml/builders.h"
#include "mml/image.h"
#include "mml/manifest.h"
#include "test.h"

#define FASHION "/usr/share/datasets/fashion-mnist"

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

TEST(fashion_speech_builds_consistent_deterministic_samples)
{
    if (!available()) return;
    char a[1024], b[1024], path[1400], cmd[3000];
    tst_tmp_path("fs-a", a, sizeof a);
    tst_tmp_path("fs-b", b, sizeof b);
    mml_fashion_speech_options o = small(a);
    CHECK_OK(mml_build_fashion_speech(&o));
    o.out_dir = b;
    CHECK_OK(mml_build_fashion_speech(&o));
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' >/dev/null", a, b);
    CHECK(system(cmd) == 0);
    CHECK(mml_build_fashion_speech(&o) != MML_OK); /* exists */
    static const char *const splits[] = { "train", "val", "test" };
    static const int counts[] = { 30, 5, 12 };
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/%s.jsonl", a, splits[s]);
        mml_manifest *m = NULL;
        CHECK_OK(mml_manifest_load(path, &m));
        if (!m) continue;
        CHECK(m->n == counts[s]);
        for (int64_t i = 0; i < m->n; i++) {
            const mml_sample *x = &m->samples[i];
            CHECK(x->has[MML_MOD_IMAGE] && x->has[MML_MOD_AUDIO] && x->has[MML_MOD_TEXT]);
            const char *label = mml_sample_field(x, "label");
            /* the spoken file is named after the class */
            CHECK(label && strstr(x->path[MML_MOD_AUDIO], label) != NULL);
            if (i > 2) continue;
            mml_tensor *img = mml_image_load(x->path[MML_MOD_IMAGE], 0);
            CHECK(img && img->shape[0] == 1 && img->shape[1] == 28 && img->shape[2] == 28);
            mml_tensor_free(img);
            mml_audio au;
            CHECK_OK(mml_wav_load(x->path[MML_MOD_AUDIO], &au));
            double energy = 0;
            for (int64_t k = 0; k < au.n; k++) energy += au.samples[k] * au.samples[k];
            CHECK(au.rate == 16000 && au.n > 4000 && energy > 1.0);
            mml_audio_free(&au);
        }
        mml_manifest_free(m);
    }
}

TEST(fashion_speech_without_fashion_mnist_is_refused)
{
    char out[1024];
    tst_tmp_path("fs-missing", out, sizeof out);
    mml_fashion_speech_options o = small(out);
    o.fashion_dir = "/nonexistent/fashion";
    CHECK(mml_build_fashion_speech(&o) != MML_OK);
    CHECK(strstr(mml_last_error(), "dataset-fashion-mnist") != NULL);
    struct stat st;
    CHECK(stat(out, &st) != 0);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    CHECK(stat(tmp, &st) != 0);
}
