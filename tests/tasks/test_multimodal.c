/* The multimodal task end to end on a small synthetic image + audio set:
 * mml train on a fusion config, mml compare on a study (results, report,
 * robustness), and bad studies refused before anything is written. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tasks/mm_toy.h"
#include "test.h"

static const char *BASE =
    "{\"task\": \"multimodal\","
    " \"data\": {\"train\": \"train.jsonl\", \"val\": \"val.jsonl\", \"test\": \"test.jsonl\","
    "          \"audio\": {\"rate\": 8000, \"frames\": 16, \"n_mels\": 16, \"n_fft\": 256, \"hop\": 128}},"
    " \"model\": {\"encoders\": {"
    "    \"image\": {\"type\": \"sequential\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}]},"
    "    \"audio\": {\"type\": \"rnn\", \"cell\": \"gru\", \"hidden\": 8, \"pool\": \"mean\"}},"
    "  \"fusion\": {\"type\": \"concat\"}, \"head\": {\"hidden\": [16]}},"
    " \"train\": {\"epochs\": 6, \"batch_size\": 8, \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}, \"modality_dropout\": 0.2}}";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

TEST(cli_train_multimodal_config)
{
    char dir[1024], cfg[1200], args[4096], out[8192];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/fusion.json", dir);
    write_text(cfg, BASE);
    snprintf(args, sizeof args, "train %s --out %s/m.safetensors --json", cfg, dir);
    int rc = tst_run_cli(args, out, sizeof out);
    CHECK(rc == 0);
    if (rc) printf("%s\n", out);
    const char *last = strrchr(out, '{');
    cJSON *j = last ? cJSON_Parse(last) : NULL;
    CHECK(j != NULL);
    if (!j) printf("%s\n", out);
    double acc = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "accuracy"));
    CHECK(acc >= 0.9);
    const char *fusion = cJSON_GetStringValue(cJSON_GetObjectItem(j, "fusion"));
    CHECK(fusion && !strcmp(fusion, "concat"));
    cJSON_Delete(j);
    /* test-time perturbation is a flag */
    snprintf(args, sizeof args, "train %s --out %s/m.safetensors --epochs 1 --test-missing image=1 --test-noise audio=0.5", cfg, dir);
    CHECK(tst_run_cli(args, out, sizeof out) == 0);
    CHECK(strstr(out, "test (perturbed)") && strstr(out, "image: 100% missing") && strstr(out, "audio: 0% missing, noise std 0.50"));
    snprintf(args, sizeof args, "train %s --test-missing smell=1", cfg);
    CHECK(tst_run_cli(args, out, sizeof out) == 2);
    snprintf(args, sizeof args, "train %s --out %s/m.safetensors --json", cfg, dir);
    /* an image pipeline from the config, and a bad one named by key */
    static const char *const pipelines[2] = { "[{\"center_crop\": 24}, {\"hflip\": 0.5}]", "[{\"blur\": 1}]" };
    for (int k = 0; k < 2; k++) {
        char text[4096];
        const char *at = strstr(BASE, "\"audio\": {\"rate\"");
        snprintf(text, sizeof text, "%.*s\"image\": {\"interpolation\": \"bicubic\", \"transforms\": %s}, %s", (int)(at - BASE),
                 BASE, pipelines[k], at);
        write_text(cfg, text);
        rc = tst_run_cli(args, out, sizeof out);
        CHECK(rc == k);
        if (k) CHECK(strstr(out, "data.image.transforms[0]") != NULL);
        if (rc != k) printf("%s\n", strstr(out, "mml:") ? strstr(out, "mml:") : out);
    }
}

static char *study_text_ref(const char *variants, const char *reference)
{
    size_t n = strlen(BASE) + strlen(variants) + 512;
    char *s = malloc(n);
    snprintf(s, n,
             "{\"name\": \"toy\", \"seeds\": 1, \"base\": %s,\n"
             " \"robustness\": {\"noise\": [0, 1, 3], \"missing\": [0, 0.5, 1], \"reference\": \"%s\"},\n"
             " \"variants\": [%s]}",
             BASE, reference, variants);
    return s;
}

static char *study_text(const char *variants) { return study_text_ref(variants, "late"); }

TEST(cli_compare_writes_results_and_report)
{
    char dir[1024], study[1200], res[1200], args[4096], out[16384];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(study, sizeof study, "%s/study.json", dir);
    char *s = study_text("{\"name\": \"image only\", \"patch\": {\"model\": {\"encoders\": {\"audio\": null}, \"fusion\": null}}},"
                         "{\"name\": \"audio only\", \"patch\": {\"model\": {\"encoders\": {\"image\": null}, \"fusion\": null},"
                         " \"train\": {\"augment\": {\"audio\": {\"time_mask\": 4, \"freq_mask\": 4, \"time_shift\": 3, \"noise\": 0.1},"
                         " \"image\": {\"shift\": 2, \"noise\": 0.1}}}}},"
                         "{\"name\": \"late\", \"patch\": {\"model\": {\"fusion\": {\"type\": \"late\"}, \"head\": null}}},"
                         "{\"name\": \"attention\", \"patch\": {\"model\": {\"fusion\": {\"type\": \"attention\", \"out\": 8},"
                         " \"tasks\": [{\"label\": \"group\", \"weight\": 0.5}]}}}");
    write_text(study, s);
    free(s);
    snprintf(res, sizeof res, "%s/results", dir);
    snprintf(args, sizeof args, "compare %s --out %s --quiet --force", study, res);
    int rc = tst_run_cli(args, out, sizeof out);
    CHECK(rc == 0);
    if (rc) printf("%s\n", out);
    CHECK(strstr(out, "| attention | attention |") != NULL);
    char path[1400];
    snprintf(path, sizeof path, "%s/results.json", res);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    CHECK(j != NULL);
    const cJSON *vars = cJSON_GetObjectItem(j, "variants");
    CHECK(cJSON_GetArraySize(vars) == 4);
    const cJSON *late = cJSON_GetArrayItem(vars, 2), *att = cJSON_GetArrayItem(vars, 3);
    /* the augmented audio-only model still learns the tones */
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(vars, 1), "accuracy"), "mean")) >= 0.8);
    double late_acc = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(late, "accuracy"), "mean"));
    CHECK(late_acc >= 0.9);
    /* noise levels: clean, then worse; removing every image leaves audio to the late fusion */
    const cJSON *noise = cJSON_GetObjectItem(cJSON_GetObjectItem(late, "noise_accuracy"), "image");
    CHECK(cJSON_GetArraySize(noise) == 3);
    CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(noise, 0)) == late_acc);
    const cJSON *miss = cJSON_GetObjectItem(cJSON_GetObjectItem(late, "missing_accuracy"), "image");
    CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(miss, 2)) >= 0.5);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(att, "modality_weights")));
    /* the second task: trained by the attention variant only */
    const cJSON *group = cJSON_GetObjectItem(cJSON_GetObjectItem(att, "task_accuracy"), "group");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(group, "mean")) >= 0.9);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(late, "task_accuracy"), "group"), "mean")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(vars, 0), "modality_weights")));
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/report.html", res);
    f = fopen(path, "r");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
    CHECK(strstr(buf, "<svg") != NULL && strstr(buf, "Confusion") != NULL);
    /* an existing result is not overwritten without --force */
    snprintf(args, sizeof args, "compare %s --out %s --quiet", study, res);
    CHECK(tst_run_cli(args, out, sizeof out) == 1);
    CHECK(strstr(out, "exists") != NULL);
}

TEST(cli_compare_refuses_bad_studies_before_writing)
{
    char dir[1024], study[1200], res[1200], args[4096], out[8192];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(study, sizeof study, "%s/bad.json", dir);
    snprintf(res, sizeof res, "%s/bad-results", dir);
    static const char *const bad[][2] = {
        { "{\"name\": \"late\"}, {\"name\": \"x\", \"patch\": {\"model\": {\"fusion\": {\"type\": \"tfm\"}}}}", "tfm" },
        { "{\"name\": \"late\"}, {\"name\": \"x\", \"patch\": {\"model\": {\"fusion\": {\"type\": \"early\"}}}}", "flatten" },
        { "{\"name\": \"x\", \"patch\": {\"data\": {\"train\": \"other.jsonl\"}}}", "variants[0].patch.data" },
        { "{\"name\": \"x\", \"patch\": {\"model\": {\"encoders\": {\"smell\": {\"type\": \"flatten\"}}}}}", "smell" },
        { "{\"name\": \"late\", \"patch\": {}}, {\"name\": \"late\"}", "used twice" },
        { "{\"name\": \"late\", \"patch\": {\"train\": {\"augment\": {\"audio\": {\"time_mask\": -1}}}}}", "train.augment.audio.time_mask" },
        { "{\"name\": \"x\", \"patch\": {\"task\": \"retrieval\", \"model\": {\"fusion\": null, \"head\": null},"
          " \"transfer\": {\"from\": \"text\", \"to\": \"audio\"}}}", "transfer.from: 'text' is not a modality" },
        { "{\"name\": \"x\", \"patch\": {\"task\": \"retrieval\", \"model\": {\"fusion\": null, \"head\": null}}}", "transfer" },
        { "{\"name\": \"x\", \"patch\": {\"transfer\": {\"from\": \"image\", \"to\": \"audio\"}}}", "transfer" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *s = study_text(bad[k][0]);
        write_text(study, s);
        free(s);
        snprintf(args, sizeof args, "compare %s --out %s --quiet", study, res);
        CHECK(tst_run_cli(args, out, sizeof out) == 1);
        CHECK(strstr(out, bad[k][1]) != NULL);
        if (!strstr(out, bad[k][1])) printf("    case %zu: %s\n", k, out);
        struct stat st;
        CHECK(stat(res, &st) != 0);
    }
}

TEST(cli_train_multitask_heads)
{
    char dir[1024], cfg[1200], args[4096], out[16384];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/multitask.json", dir);
    /* the base config with a second task on the shared trunk */
    char text[4096];
    const char *at = strstr(BASE, "\"model\": {") + 10;
    snprintf(text, sizeof text, "%.*s\"tasks\": [{\"label\": \"group\", \"weight\": 0.5}], %s", (int)(at - BASE), BASE, at);
    write_text(cfg, text);
    snprintf(args, sizeof args, "train %s --out %s/mt.safetensors", cfg, dir);
    int rc = tst_run_cli(args, out, sizeof out);
    CHECK(rc == 0);
    const char *line = strstr(out, "task group: accuracy ");
    CHECK(line != NULL);
    if (!line) printf("%s\n", out);
    else CHECK(atof(line + strlen("task group: accuracy ")) >= 0.9);
    /* late fusion has no shared representation for a second head */
    snprintf(text, sizeof text, "%.*s\"tasks\": [{\"label\": \"group\"}], %s", (int)(at - BASE), BASE, at);
    const char *from = "\"fusion\": {\"type\": \"concat\"}, \"head\": {\"hidden\": [16]}";
    char *late = strstr(text, from), fixed[4096];
    CHECK(late != NULL);
    if (!late) return;
    snprintf(fixed, sizeof fixed, "%.*s\"fusion\": {\"type\": \"late\"}%s", (int)(late - text), text, late + strlen(from));
    write_text(cfg, fixed);
    CHECK(tst_run_cli(args, out, sizeof out) == 1);
    CHECK(strstr(out, "model.fusion") != NULL);
    if (!strstr(out, "model.fusion")) printf("%s\n", strstr(out, "mml:") ? strstr(out, "mml:") : out);
}

TEST(cli_compare_base_from_a_file)
{
    char dir[1024], study[1200], base[1200], res[1200], args[4096], out[8192];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(base, sizeof base, "%s/base.json", dir);
    write_text(base, BASE);
    snprintf(study, sizeof study, "%s/from-file.json", dir);
    snprintf(res, sizeof res, "%s/from-file", dir);
    write_text(study, "{\"base\": \"base.json\", \"robustness\": {\"noise\": [0], \"missing\": [0, 1]},"
                      " \"variants\": [{\"name\": \"gmu\", \"patch\": {\"model\": {\"fusion\": {\"type\": \"gmu\", \"out\": 8}}}}]}");
    snprintf(args, sizeof args, "compare %s --out %s --quiet --epochs 2", study, res);
    CHECK(tst_run_cli(args, out, sizeof out) == 0);
    CHECK(strstr(out, "| gmu | gmu |") != NULL);
    write_text(study, "{\"base\": \"nowhere.json\", \"variants\": [{\"name\": \"x\"}]}");
    snprintf(args, sizeof args, "compare %s --out %s-2 --quiet", study, res);
    CHECK(tst_run_cli(args, out, sizeof out) == 1);
    CHECK(strstr(out, "nowhere.json") != NULL);
}

/* A cross-modal row beside the unimodal one: a classifier trained on image
 * embeddings of the aligned space, tested on audio. */
TEST(cli_compare_cross_modal_transfer_variant)
{
    char dir[1024], study[1200], res[1200], args[4096], out[16384];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(study, sizeof study, "%s/xm.json", dir);
    char *s = study_text_ref("{\"name\": \"audio only\", \"patch\": {\"model\": {\"encoders\": {\"image\": null}, \"fusion\": null}}},"
                         "{\"name\": \"image to audio\", \"patch\": {\"task\": \"retrieval\","
                         " \"model\": {\"fusion\": null, \"head\": null, \"embed\": 8, \"objective\": {\"type\": \"info_nce\", \"temperature\": 0.1}},"
                         " \"transfer\": {\"from\": \"image\", \"to\": \"audio\"}}}", "audio only");
    write_text(study, s);
    free(s);
    snprintf(res, sizeof res, "%s/xm-results", dir);
    snprintf(args, sizeof args, "compare %s --out %s --quiet", study, res);
    int rc = tst_run_cli(args, out, sizeof out);
    CHECK_MSG(rc == 0, "%s", out);
    char path[1300];
    snprintf(path, sizeof path, "%s/results.json", res);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char buf[1 << 20];
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(buf), *v = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "variants"), 1);
    CHECK(v != NULL);
    if (!v) return;
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(v, "fusion")), "image->audio"));
    double acc = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "accuracy"), "mean"));
    CHECK_MSG(acc >= 0.8, "transfer accuracy %g", acc);
    /* only audio is seen at test time: removing it all leaves chance, removing images changes nothing */
    cJSON *miss = cJSON_GetObjectItem(v, "missing_accuracy");
    double no_audio = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(miss, "audio"), 2));
    double no_image = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(miss, "image"), 2));
    CHECK_MSG(no_audio < 0.6 && no_image == acc, "%g %g %g", acc, no_audio, no_image);
    cJSON_Delete(j);
}

/* --only redoes some rows of a study; a name that is no variant's is refused before anything runs. */
TEST(cli_compare_only_some_variants)
{
    char dir[1024], study[1200], res[1200], args[4096], out[16384];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(study, sizeof study, "%s/only.json", dir);
    char *s = study_text("{\"name\": \"image only\", \"patch\": {\"model\": {\"encoders\": {\"audio\": null}, \"fusion\": null}}},"
                         "{\"name\": \"late\", \"patch\": {\"model\": {\"fusion\": {\"type\": \"late\"}, \"head\": null}}}");
    write_text(study, s);
    free(s);
    snprintf(res, sizeof res, "%s/only-results", dir);
    snprintf(args, sizeof args, "compare %s --out %s --quiet --only 'image only'", study, res);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0, "%s", out);
    CHECK(strstr(out, "| image only |") && !strstr(out, "| late |"));
    snprintf(args, sizeof args, "compare %s --out %s --quiet --force --only late,concat", study, res);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "--only: no variant is named 'concat'"));
}
