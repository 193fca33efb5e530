/* mml data avdigits: the same seed gives the same bytes, the manifests load,
 * labels agree across modalities, and bad requests fail cleanly. */
#include <stdlib.h>
#include <string.h>

#include "mml/manifest.h"
#include "test.h"

TEST(avdigits_is_deterministic_and_consistent)
{
    char datasets[1024], a[512], b[512], args[4096], out[4096];
    tst_dataset_path("", datasets, sizeof datasets);
    snprintf(args, sizeof args, "%s/fsdd/recordings/0_george_0.wav", datasets);
    FILE *probe = fopen(args, "rb");
    if (!probe) {
        printf("    (skipped: shared datasets not present)\n");
        return;
    }
    fclose(probe);
    tst_tmp_path("av_a", a, sizeof a);
    tst_tmp_path("av_b", b, sizeof b);
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "data avdigits --out '%s' --seed 3 --audio-snr 0 --datasets '%s'", k ? b : a, datasets);
        CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0, "%s", out);
    }
    snprintf(args, sizeof args, "diff -r '%s' '%s' > /dev/null", a, b);
    CHECK_MSG(system(args) == 0, "two builds with seed 3 differ");

    char path[600];
    snprintf(path, sizeof path, "%s/test.jsonl", a);
    mml_manifest *m = NULL;
    CHECK_OK(mml_manifest_load(path, &m));
    if (m) {
        CHECK(m->n == 2000);
        static const char *words[] = { "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine" };
        int bad = 0;
        for (int64_t i = 0; i < m->n; i++) {
            const mml_sample *s = &m->samples[i];
            int label = atoi(s->label);
            /* the image, the recording's file name (noisy copies keep the id) and the word agree */
            bad += !s->has[MML_MOD_IMAGE] || !s->has[MML_MOD_AUDIO] || strcmp(s->text, words[label]) != 0;
        }
        CHECK(bad == 0);
        mml_manifest_free(m);
    }
    snprintf(args, sizeof args, "data avdigits --out '%s' --datasets '%s'", a, datasets);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "already exists"));
    snprintf(args, sizeof args, "data avdigits --out '%s/new' --datasets /nonexistent", a);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "/nonexistent"));
    CHECK(tst_run_cli("data avdigits", out, sizeof out) == 2);
}

TEST(avdigits_holds_out_a_speaker)
{
    char datasets[1024], dir[512], args[4096], out[4096], path[600];
    tst_dataset_path("", datasets, sizeof datasets);
    snprintf(args, sizeof args, "%s/fsdd/recordings/0_theo_0.wav", datasets);
    FILE *probe = fopen(args, "rb");
    if (!probe) {
        printf("    (skipped: shared datasets not present)\n");
        return;
    }
    fclose(probe);
    tst_tmp_path("av_loso", dir, sizeof dir);
    snprintf(args, sizeof args, "data avdigits --out '%s' --holdout-speaker theo --datasets '%s'", dir, datasets);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0, "%s", out);
    static const char *const splits[] = { "train", "val", "test" };
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, splits[s]);
        mml_manifest *m = NULL;
        CHECK_OK(mml_manifest_load(path, &m));
        int64_t theo = 0;
        for (int64_t i = 0; m && i < m->n; i++) theo += !strcmp(mml_sample_field(&m->samples[i], "speaker"), "theo");
        CHECK(m && theo == (s == 2 ? m->n : 0));
        mml_manifest_free(m);
    }
    snprintf(args, sizeof args, "data avdigits --out '%s-2' --holdout-speaker nobody --datasets '%s'", dir, datasets);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "nobody"));
}
