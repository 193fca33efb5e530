/* The multimodal autoencoder on the toy image + audio set: each modality is
 * reconstructed from the other better than by the mean, and a fusion model
 * uses it to impute a missing modality. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mml/image.h"
#include "tasks/mm_toy.h"
#include "test.h"

static const char *DATA =
    "\"data\": {\"train\": \"train.jsonl\", \"val\": \"val.jsonl\", \"test\": \"test.jsonl\","
    "          \"audio\": {\"rate\": 8000, \"frames\": 16, \"n_mels\": 16, \"n_fft\": 256, \"hop\": 128}}";
static const char *ENCODERS =
    "\"encoders\": {"
    "    \"image\": {\"type\": \"sequential\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}]},"
    "    \"audio\": {\"type\": \"sequential\", \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}]}}";

static void write_config(const char *path, const char *task, const char *model, int epochs)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"task\": \"%s\", %s, \"model\": {%s, %s},"
               " \"train\": {\"epochs\": %d, \"batch_size\": 8, \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}}}",
            task, DATA, ENCODERS, model, epochs);
    fclose(f);
}

static double json_at(cJSON *j, const char *a, const char *b)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(b ? cJSON_GetObjectItem(j, a) : j, b ? b : a));
}

TEST(cli_train_autoencoder_and_impute)
{
    char dir[1024], cfg[1200], args[4096];
    static char out[1 << 17]; /* 30 epochs of progress lines come first */
    tst_mm_toy_data(dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/ae.json", dir);
    write_config(cfg, "autoencoder", "\"latent\": 8, \"decoder\": {\"hidden\": [32]}", 30);
    snprintf(args, sizeof args, "train %s --out %s/ae.safetensors --json", cfg, dir);
    int rc = tst_run_cli(args, out, sizeof out);
    CHECK_MSG(rc == 0, "%s", out);
    const char *js = strstr(out, "{\"mse\"");
    cJSON *j = js ? cJSON_Parse(js) : NULL;
    CHECK_MSG(j != NULL, "%s", out);
    if (!j) return;
    cJSON *mse = cJSON_GetObjectItem(j, "mse");
    double audio_from_image = json_at(mse, "image", "audio"), mean_audio = json_at(j, "baseline", "audio");
    double image_from_audio = json_at(mse, "audio", "image"), mean_image = json_at(j, "baseline", "image");
    /* the class, and so the tone and the square's place, carries across */
    CHECK_MSG(audio_from_image < 0.8 * mean_audio, "audio from image %g, mean %g", audio_from_image, mean_audio);
    CHECK_MSG(image_from_audio < 0.9 * mean_image, "image from audio %g, mean %g", image_from_audio, mean_image);
    cJSON_Delete(j);
    /* images decoded from audio alone: the square where the tone says */
    char grid[1200];
    snprintf(grid, sizeof grid, "%s/grid.png", dir);
    snprintf(args, sizeof args, "generate %s/ae.safetensors --manifest %s/test.jsonl --from audio --per-class 2 --out %s", dir, dir, grid);
    CHECK_MSG(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, "6 images generated from audio"), "%s", out);
    mml_tensor *g = mml_image_load(grid, 1);
    CHECK(g && g->shape[1] == 3 * 30 + 2 && g->shape[2] == 2 * 30 + 2);
    for (int c = 0; g && c < TST_MM_TOY_CLASSES; c++) { /* the 8x8 square of class c sits at x = 2 + 9c, y = 4 */
        double in = 0, out_sq = 0;
        const uint8_t *px = g->data;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                double v = px[(2 + c * 30 + y) * g->shape[2] + 2 + x];
                if (y >= 4 && y < 12 && x >= 2 + 9 * c && x < 10 + 9 * c) in += v / 64;
                else out_sq += v / (28 * 28 - 64);
            }
        CHECK_MSG(in > out_sq + 50, "class %d: square %.0f, elsewhere %.0f", c, in, out_sq);
    }
    mml_tensor_free(g);
    snprintf(args, sizeof args, "generate %s/ae.safetensors --text left --out %s", dir, grid);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "no text encoder"));
    /* a fusion model that imputes audio with it when audio is missing */
    snprintf(cfg, sizeof cfg, "%s/fused.json", dir);
    write_config(cfg, "multimodal", "\"fusion\": {\"type\": \"concat\"}, \"impute\": \"ae.safetensors\"", 6);
    snprintf(args, sizeof args, "train %s --out %s/f.safetensors --test-missing audio=1 --json", cfg, dir);
    rc = tst_run_cli(args, out, sizeof out);
    CHECK_MSG(rc == 0, "%s", out);
    js = strstr(out, "{\"accuracy\"");
    CHECK_MSG(js && atof(js + strlen("{\"accuracy\": ")) >= 0.6, "%s", out);
    /* an imputer that is no autoencoder */
    snprintf(cfg, sizeof cfg, "%s/bad.json", dir);
    write_config(cfg, "multimodal", "\"fusion\": {\"type\": \"concat\"}, \"impute\": \"f.safetensors\"", 1);
    snprintf(args, sizeof args, "train %s --out %s/g.safetensors", cfg, dir);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "model.impute: ") && strstr(out, "not a multimodal autoencoder"));
}
