/* mml inspect recognises each format by content; broken files give one
 * error line naming the file and exit status 1. */
#include <string.h>

#include "test.h"

static int inspect(const char *fixture, char *out, size_t cap)
{
    char path[1024], args[1200];
    snprintf(args, sizeof args, "inspect '%s'", tst_fixture_path(fixture, path, sizeof path));
    return tst_run_cli(args, out, cap);
}

TEST(cli_inspect_recognises_formats)
{
    char out[4096];
    struct { const char *file, *want; } good[] = {
        { "wav/pcm24_stereo.wav", "WAV, 16000 Hz, 2 channels, 24-bit, 64 samples" },
        { "images/rgb.png", "image, 2 x 3 pixels, 3 channels" },
        { "images/gray.pgm", "image, 5 x 4 pixels, 1 channel" },
        { "ops.safetensors", "safetensors" },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(inspect(good[i].file, out, sizeof out) == 0 && strstr(out, good[i].want), "%s: %s", good[i].file, out);
    const char *bad[] = { "wav/truncated.wav", "wav/huge_data.wav", "images/truncated.png", "images/bomb.png" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = inspect(bad[i], out, sizeof out);
        CHECK_MSG(st == 1 && strstr(out, bad[i]) && strchr(out, '\n') == strrchr(out, '\n'), "%s: %d %s", bad[i], st, out);
    }
    char cfg[1024], args[1200];
    snprintf(args, sizeof args, "inspect '%s/examples/fashion_cnn.json'", MML_SOURCE_DIR);
    CHECK(tst_run_cli(args, out, sizeof out) == 0 && strstr(out, "JSON configuration, model with 11 layers"));
    FILE *f = fopen(tst_tmp_path("bad.json", cfg, sizeof cfg), "w");
    fputs("{\n  \"model\": [1,\n}", f);
    fclose(f);
    snprintf(args, sizeof args, "inspect '%s'", cfg);
    CHECK(tst_run_cli(args, out, sizeof out) == 1 && strstr(out, "bad.json:3:"));
}
