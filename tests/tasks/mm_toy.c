#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include "mml/audio.h"
#include "mml/image.h"
#include "tasks/mm_toy.h"
#include "test.h"

const char *const tst_mm_toy_text[TST_MM_TOY_CLASSES] = { "a square on the left", "a square in the middle",
                                                           "a square on the right" };

/* Class c: a bright 8x8 square in one of three places; a tone at 300 (c + 1) Hz. */
static void write_sample(const char *dir, const char *id, int c, unsigned seed, FILE *manifest, bool with_audio)
{
    char path[1024];
    mml_tensor *img = mml_tensor_create(MML_U8, 3, (int64_t[]){ 1, 28, 28 }, false);
    uint8_t *px = img->data;
    for (int i = 0; i < 28 * 28; i++) px[i] = (uint8_t)((seed * 2654435761u + (unsigned)i * 40503u) >> 27);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) px[(4 + y) * 28 + 2 + c * 9 + x] = 230;
    snprintf(path, sizeof path, "%s/%s.png", dir, id);
    mml_image_save_png(path, img);
    mml_tensor_free(img);
    float wav[4000];
    for (int i = 0; i < 4000; i++)
        wav[i] = 0.4f * sinf(2.0f * 3.14159265f * 300.0f * (float)(c + 1) * (float)i / 8000.0f + (float)seed);
    snprintf(path, sizeof path, "%s/%s.wav", dir, id);
    mml_wav_save(path, wav, 4000, 8000);
    if (with_audio)
        fprintf(manifest, "{\"id\": \"%s\", \"image\": \"%s.png\", \"audio\": \"%s.wav\", \"text\": \"%s\", \"label\": %d, \"group\": \"%s\"}\n",
                id, id, id, tst_mm_toy_text[c], c, c ? "high" : "low");
    else fprintf(manifest, "{\"id\": \"%s\", \"image\": \"%s.png\", \"audio\": null, \"text\": \"%s\", \"label\": %d, \"group\": \"%s\"}\n",
                 id, id, tst_mm_toy_text[c], c, c ? "high" : "low");
}

static void write_split(const char *dir, const char *split, int n, unsigned seed0)
{
    char path[1024], id[64];
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, split);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s-%03d", split, i);
        write_sample(dir, id, i % TST_MM_TOY_CLASSES, seed0 + (unsigned)i, f, i % 7 != 5);
    }
    fclose(f);
}

const char *tst_mm_toy_data(char *dir, size_t cap)
{
    tst_tmp_path("mm", dir, cap);
    mkdir(dir, 0777);
    write_split(dir, "train", 45, 1);
    write_split(dir, "val", 9, 1000);
    write_split(dir, "test", 21, 2000);
    return dir;
}

