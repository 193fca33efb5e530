/* The retrieval task end to end on the toy image + audio set: mml train on an
 * alignment config for each objective, retrieval in both directions and
 * cross-modal transfer, and config errors named by key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mml/align.h"
#include "mml/knn.h"
#include "mml/safetensors.h"
#include "tasks/mm_toy.h"
#include "test.h"

static const char *CONFIG =
    "{\"task\": \"retrieval\","
    " \"data\": {\"train\": \"train.jsonl\", \"val\": \"val.jsonl\", \"test\": \"test.jsonl\","
    "          \"audio\": {\"rate\": 8000, \"frames\": 16, \"n_mels\": 16, \"n_fft\": 256, \"hop\": 128}},"
    " \"model\": {\"encoders\": {"
    "    \"image\": {\"type\": \"sequential\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}]},"
    "    \"audio\": {\"type\": \"rnn\", \"cell\": \"gru\", \"hidden\": 8, \"pool\": \"mean\"}},"
    "  \"embed\": 8, %s},"
    " \"train\": {\"epochs\": %d, \"batch_size\": 8, \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}}}";

static void write_config(const char *path, const char *model_extra, int epochs)
{
    FILE *f = fopen(path, "w");
    fprintf(f, CONFIG, model_extra, epochs);
    fclose(f);
}

static double direction_value(cJSON *j, const char *query, const char *level, const char *key)
{
    cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(j, "directions"))
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(d, "query")), query))
            return cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, level), key));
    return -1;
}

static cJSON *train(const char *dir, const char *model_extra, int epochs, char *out, size_t cap)
{
    char cfg[1200], args[4096];
    snprintf(cfg, sizeof cfg, "%s/align.json", dir);
    write_config(cfg, model_extra, epochs);
    snprintf(args, sizeof args, "train %s --out %s/a.safetensors --json", cfg, dir);
    int rc = tst_run_cli(args, out, cap);
    CHECK_MSG(rc == 0, "%s: %s", model_extra, out);
    const char *js = strstr(out, "{\"directions\""); /* --json: the last line */
    return rc == 0 && js ? cJSON_Parse(js) : NULL;
}

TEST(cli_train_retrieval_aligns_image_and_audio)
{
    char dir[1024], out[16384];
    tst_mm_toy_data(dir, sizeof dir);
    cJSON *j = train(dir, "\"objective\": {\"type\": \"info_nce\", \"temperature\": 0.1}", 8, out, sizeof out);
    CHECK(j != NULL);
    if (!j) return;
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "directions")) == 2);
    /* 3 well-separated classes: the right class comes first */
    CHECK_MSG(direction_value(j, "audio", "category", "r1") >= 0.9, "%s", out);
    CHECK_MSG(direction_value(j, "image", "category", "r1") >= 0.9, "%s", out);
    CHECK(direction_value(j, "image", "category", "map") > 0.8);
    /* every 7th test sample lacks audio: fewer audio queries, so instance R@10 is over a gallery of 21 images */
    CHECK(direction_value(j, "audio", "instance", "r10") > 0.0);
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "transfer"), 0);
    CHECK(t && cJSON_GetNumberValue(cJSON_GetObjectItem(t, "accuracy")) >= 0.8);
    CHECK(strstr(out, "transfer: a linear classifier on image embeddings: audio test accuracy") != NULL);
    /* mml eval on the saved model, from another directory: the same numbers */
    char args[4096];
    snprintf(args, sizeof args, "eval %s/a.safetensors --json", dir);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0, "%s", out);
    const char *js = strstr(out, "{\"directions\"");
    cJSON *e = js ? cJSON_Parse(js) : NULL;
    CHECK(e != NULL);
    for (int k = 0; e && k < 2; k++) {
        const char *q = k ? "audio" : "image";
        CHECK(direction_value(e, q, "category", "map") == direction_value(j, q, "category", "map"));
        CHECK(direction_value(e, q, "instance", "r5") == direction_value(j, q, "instance", "r5"));
    }
    cJSON_Delete(e);
    cJSON_Delete(j);
}

TEST(cli_train_retrieval_objectives)
{
    char dir[1024], out[16384];
    tst_mm_toy_data(dir, sizeof dir);
    static const char *const objectives[] = { "\"objective\": {\"type\": \"hinge\", \"margin\": 0.2, \"hardest\": true}",
                                              "\"objective\": {\"type\": \"hinge\", \"margin\": 0.2}",
                                              "\"objective\": {\"type\": \"cosine\", \"margin\": 0.1}",
                                              "\"objective\": {\"type\": \"supcon\", \"temperature\": 0.1}",
                                              "\"objective\": {\"type\": \"info_nce\", \"learn_temperature\": false}" };
    for (size_t k = 0; k < sizeof objectives / sizeof objectives[0]; k++) {
        cJSON *j = train(dir, objectives[k], 8, out, sizeof out);
        CHECK_MSG(j && direction_value(j, "audio", "category", "r1") >= 0.7, "%s: %s", objectives[k], out);
        cJSON_Delete(j);
    }
}

TEST(cli_train_retrieval_config_errors)
{
    char dir[1024], cfg[1200], args[4096], out[8192];
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/align.json", dir);
    snprintf(args, sizeof args, "train %s --out %s/a.safetensors", cfg, dir);
    static const struct {
        const char *extra, *message;
    } cases[] = {
        { "\"objective\": {\"type\": \"triplet\"}", "model.objective.type" },
        { "\"objective\": {\"temperature\": 0}", "model.objective.temperature" },
        { "\"shared\": true", "model.encoders.audio: a shared (Siamese) encoder needs every modality in the same form" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_config(cfg, cases[k].extra, 1);
        CHECK(tst_run_cli(args, out, sizeof out) == 1);
        CHECK_MSG(strstr(out, cases[k].message) != NULL, "%s: %s", cases[k].extra, out);
    }
}

/* The first hit's class for an audio query of class c (toy ids: "split-NNN", class NNN % 3). */
static int search_class(const char *dir, const char *model, const char *index, int c, const char *extra, char *out,
                        size_t cap)
{
    char args[4096];
    snprintf(args, sizeof args, "search %s %s --audio %s/test-%03d.wav --k 3 --json %s", model, index, dir, c, extra);
    if (tst_run_cli(args, out, cap) != 0) return -1;
    cJSON *hits = cJSON_Parse(out);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(hits, 0), "id"));
    int found = id && !strncmp(id, "test-", 5) ? atoi(id + 5) % TST_MM_TOY_CLASSES : -1;
    cJSON_Delete(hits);
    return found;
}

TEST(cli_embed_and_search)
{
    char dir[1024], out[16384], args[4096], model[1200], index[1200];
    tst_mm_toy_data(dir, sizeof dir);
    cJSON_Delete(train(dir, "\"objective\": {\"type\": \"info_nce\", \"temperature\": 0.1}", 8, out, sizeof out));
    snprintf(model, sizeof model, "%s/a.safetensors", dir);
    snprintf(index, sizeof index, "%s/images.safetensors", dir);
    snprintf(args, sizeof args, "embed %s %s/test.jsonl --modality image --out %s", model, dir, index);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0, "%s", out);
    CHECK(strstr(out, "21 image embeddings (8-d)") != NULL);
    for (int c = 0; c < TST_MM_TOY_CLASSES; c++) CHECK_MSG(search_class(dir, model, index, c, "", out, sizeof out) == c, "%s", out);
    /* FAISS's indices over the 21 items find the same classes, or say why they cannot */
    static const char *approximate[] = { "--index ivf --nprobe 4", "--index hnsw --ef-search 16" };
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < TST_MM_TOY_CLASSES; c++) {
            int found = search_class(dir, model, index, c, approximate[a], out, sizeof out);
            if (mml_knn_have_faiss()) CHECK_MSG(found == c, "%s: %s", approximate[a], out);
            else CHECK_MSG(found == -1 && strstr(out, "built without FAISS"), "%s", out);
        }
    snprintf(args, sizeof args, "search %s %s --text seven --index flat", model, index);
    CHECK(tst_run_cli(args, out, sizeof out) == 2 && strstr(out, "--index must be exact, ivf or hnsw"));
    /* errors: no query file, a modality the model lacks, a file that is no index */
    snprintf(args, sizeof args, "search %s %s --audio %s/none.wav", model, index, dir);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "none.wav: No such file"));
    snprintf(args, sizeof args, "search %s %s --text seven", model, index);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "the model has no text encoder"));
    snprintf(args, sizeof args, "search %s %s --text seven", model, model);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "not an index made by mml embed"));
    snprintf(args, sizeof args, "embed %s %s/test.jsonl --modality text --out %s/t.safetensors", model, dir, dir);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "no text encoder"));
}

/* An index beside the model's fingerprint, with n rows of dim values. */
static void write_index(const char *path, const char *fingerprint, int64_t n, int64_t dim)
{
    float zeros[64] = { 0 };
    mml_st_writer *w = mml_st_writer_create();
    mml_st_writer_add_raw(w, "embeddings", MML_F32, 2, (int64_t[]){ n, dim }, zeros);
    mml_st_writer_meta(w, "mml.format", "mml-index-1");
    mml_st_writer_meta(w, "mml.model", fingerprint);
    mml_st_writer_meta(w, "mml.modality", "image");
    mml_st_writer_meta(w, "mml.ids", n ? "[\"a\", \"b\"]" : "[]");
    CHECK_OK(mml_st_writer_save(w, path));
    mml_st_writer_free(w);
}

TEST(cli_search_refuses_empty_mismatched_and_foreign_indices)
{
    char dir[1024], out[16384], args[4096], model[1200], index[1200], fp[17];
    tst_mm_toy_data(dir, sizeof dir);
    cJSON_Delete(train(dir, "\"objective\": {\"type\": \"hinge\"}", 1, out, sizeof out));
    snprintf(model, sizeof model, "%s/a.safetensors", dir);
    snprintf(index, sizeof index, "%s/idx.safetensors", dir);
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, false, NULL };
    mml_mm_data d;
    mml_align_model *m = NULL;
    CHECK_OK(mml_align_model_load(model, &opt, false, &m, &d));
    if (!m) return;
    mml_align_model_fingerprint(m, fp);
    mml_align_model_free(m);
    mml_mm_data_close(&d);
    static const struct {
        int64_t n, dim;
        const char *fp, *message;
    } cases[] = {
        { 0, 8, NULL, "the index is empty" },
        { 2, 4, NULL, "4-d embeddings, but the model's space is 8-d" },
        { 2, 8, "0123456789abcdef", "made with another model (fingerprint 0123456789abcdef" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_index(index, cases[k].fp ? cases[k].fp : fp, cases[k].n, cases[k].dim);
        snprintf(args, sizeof args, "search %s %s --audio %s/test-000.wav", model, index, dir);
        CHECK(tst_run_cli(args, out, sizeof out) == 1);
        CHECK_MSG(strstr(out, cases[k].message) != NULL, "%s", out);
    }
}

/* Zero-shot classification from text: an image + text space, each class the
 * embedding of a prompt never seen as such in training ("on the left" is). */
TEST(cli_compare_prompt_classification_from_text)
{
    char dir[1024], bpe[1024], study[1200], res[1200], args[4096], out[16384];
    tst_mm_toy_data(dir, sizeof dir);
    tst_dataset_path("clip-bpe/bpe_simple_vocab_16e6.txt.gz", bpe, sizeof bpe);
    snprintf(study, sizeof study, "%s/zs.json", dir);
    FILE *f = fopen(study, "w");
    fprintf(f,
            "{\"name\": \"zero-shot\", \"robustness\": {\"noise\": [0], \"missing\": [0, 1]},"
            " \"base\": {\"task\": \"retrieval\","
            "  \"data\": {\"train\": \"train.jsonl\", \"val\": \"val.jsonl\", \"test\": \"test.jsonl\", \"text\": {\"bpe\": \"%s\", \"context\": 8}},"
            "  \"model\": {\"encoders\": {"
            "    \"image\": {\"type\": \"sequential\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}]},"
            "    \"text\": {\"type\": \"bag\", \"embed\": 16, \"vocab\": 49408}},"
            "   \"embed\": 8, \"objective\": {\"type\": \"info_nce\", \"temperature\": 0.1}},"
            "  \"train\": {\"epochs\": 10, \"batch_size\": 8, \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}}},"
            " \"variants\": [{\"name\": \"prompts\", \"patch\": {\"transfer\": {\"from\": \"text\", \"to\": \"image\","
            "   \"prompts\": [\"square left\", \"square middle\", \"square right\"]}}}]}",
            bpe);
    fclose(f);
    snprintf(res, sizeof res, "%s/zs-results", dir);
    snprintf(args, sizeof args, "compare %s --out %s --quiet", study, res);
    int rc = tst_run_cli(args, out, sizeof out);
    CHECK_MSG(rc == 0, "%s", out);
    const char *row = strstr(out, "| prompts |");
    CHECK_MSG(row != NULL, "%s", out);
    /* the table: | variant | fusion | accuracy ... */
    double acc = -1;
    if (row) {
        const char *cell = row;
        for (int k = 0; k < 2 && cell; k++) cell = strchr(cell + 1, '|');
        if (cell) acc = atof(cell + 1);
    }
    CHECK_MSG(acc >= 80.0, "zero-shot accuracy %g: %s", acc, row ? row : out);
}
