/* Captioning end to end on the toy set, whose texts say where the square is:
 * both decoders learn to say it, BLEU and class mentions are reported, and
 * mml caption reads images from files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tasks/mm_toy.h"
#include "test.h"

static void write_config(const char *path, const char *bpe, const char *decoder, int epochs)
{
    FILE *f = fopen(path, "w");
    fprintf(f,
            "{\"task\": \"captioning\","
            " \"data\": {\"train\": \"train.jsonl\", \"val\": \"val.jsonl\", \"test\": \"test.jsonl\", \"text\": {\"bpe\": \"%s\", \"context\": 10}},"
            " \"model\": {\"encoders\": {\"image\": {\"type\": \"sequential\", \"layers\": ["
            "    {\"type\": \"conv2d\", \"out\": 4, \"kernel\": 3, \"padding\": 1}, {\"type\": \"relu\"}, {\"type\": \"max_pool2d\", \"kernel\": 4},"
            "    {\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}]}},"
            "  \"decoder\": %s, \"beam\": 2, \"mentions\": [[\"left\"], [\"middle\"], [\"right\"]]},"
            " \"train\": {\"epochs\": %d, \"batch_size\": 8, \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}}}",
            bpe, decoder, epochs);
    fclose(f);
}

TEST(cli_train_captioning_both_decoders)
{
    char dir[1024], bpe[1024], cfg[1200], args[4096];
    static char out[1 << 17];
    tst_mm_toy_data(dir, sizeof dir);
    tst_dataset_path("clip-bpe/bpe_simple_vocab_16e6.txt.gz", bpe, sizeof bpe);
    snprintf(cfg, sizeof cfg, "%s/cap.json", dir);
    static const char *const decoders[] = { "{\"type\": \"gru\", \"embed\": 16, \"hidden\": 32}",
                                            "{\"type\": \"transformer\", \"d_model\": 32, \"heads\": 2, \"layers\": 1, \"ff\": 64}" };
    for (int k = 0; k < 2; k++) {
        write_config(cfg, bpe, decoders[k], 60);
        snprintf(args, sizeof args, "train %s --out %s/cap.safetensors --json", cfg, dir);
        int rc = tst_run_cli(args, out, sizeof out);
        CHECK_MSG(rc == 0, "%s", out);
        const char *js = strstr(out, "{\"bleu\": [");
        CHECK_MSG(js != NULL, "%s", out);
        if (!js) continue;
        cJSON *j = cJSON_Parse(js);
        double b1 = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "bleu"), 0));
        double b4 = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "bleu"), 3));
        double mention = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "mention_rate"));
        cJSON_Delete(j);
        CHECK_MSG(b1 > 0.9 && b4 > 0.8 && mention > 0.9, "%s: %s", decoders[k], strstr(out, "test captions"));
        /* from image files */
        snprintf(args, sizeof args, "caption %s/cap.safetensors %s/test-000.png %s/test-002.png --beam 1", dir, dir, dir);
        CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0, "%s", out);
        CHECK_MSG(strstr(out, "test-000.png\ta square on the left") && strstr(out, "test-002.png\ta square on the right"), "%s", out);
    }
    snprintf(args, sizeof args, "caption %s/cap.safetensors %s/none.png", dir, dir);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "none.png"));
}
