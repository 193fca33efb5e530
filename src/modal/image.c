#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#include <stb_image.h>
#include <stb_image_write.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/image.h"

#define MAX_FILE ((size_t)256 << 20)

mml_tensor *mml_image_decode(const void *bytes, size_t len, int channels, const char *what)
{
    int w, h, stored;
    if (len > (size_t)INT32_MAX || !stbi_info_from_memory(bytes, (int)len, &w, &h, &stored)) {
        mml_error(MML_ERR_FORMAT, "%s: not a readable image (%s)", what, len > (size_t)INT32_MAX ? "too large" : stbi_failure_reason());
        return NULL;
    }
    if (w < 1 || h < 1 || (int64_t)w * h > MML_IMAGE_MAX_PIXELS) {
        mml_error(MML_ERR_FORMAT, "%s: image declares %d x %d pixels (limit %lld)", what, w, h,
                  (long long)MML_IMAGE_MAX_PIXELS);
        return NULL;
    }
    int want = channels ? channels : (stored >= 3 ? 3 : 1);
    unsigned char *pix = stbi_load_from_memory(bytes, (int)len, &w, &h, &stored, want);
    if (!pix) {
        mml_error(MML_ERR_FORMAT, "%s: cannot decode: %s", what, stbi_failure_reason());
        return NULL;
    }
    mml_tensor *t = mml_tensor_create(MML_U8, 3, (int64_t[]){ want, h, w }, false);
    if (t) /* HWC to CHW */
        for (int c = 0; c < want; c++)
            for (int64_t i = 0; i < (int64_t)w * h; i++) ((uint8_t *)t->data)[c * w * h + i] = pix[i * want + c];
    stbi_image_free(pix);
    return t;
}

mml_tensor *mml_image_load(const char *path, int channels)
{
    unsigned char *buf;
    size_t len;
    if (mml_file_read(path, MAX_FILE, &buf, &len) != MML_OK) return NULL;
    mml_tensor *t = mml_image_decode(buf, len, channels, path);
    mml_free(buf);
    return t;
}

typedef struct png_sink {
    FILE *f;
    bool ok;
} png_sink;

static void write_png_bytes(void *ctx, void *data, int size)
{
    png_sink *s = ctx;
    s->ok = s->ok && fwrite(data, 1, (size_t)size, s->f) == (size_t)size;
}

mml_status mml_image_save_png(const char *path, const mml_tensor *img)
{
    if (img->dtype != MML_U8 || img->ndim != 3 || (img->shape[0] != 1 && img->shape[0] != 3))
        return mml_error(MML_ERR_ARG, "%s: PNG needs U8 [1 or 3, height, width]", path);
    int c = (int)img->shape[0], h = (int)img->shape[1], w = (int)img->shape[2];
    unsigned char *hwc = mml_malloc((size_t)img->numel);
    if (!hwc) return MML_ERR_NOMEM;
    for (int ch = 0; ch < c; ch++) /* CHW to HWC */
        for (int i = 0; i < w * h; i++) hwc[i * c + ch] = ((const uint8_t *)img->data)[ch * w * h + i];
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    png_sink sink = { fopen(tmp, "wb"), true };
    int ok = sink.f && stbi_write_png_to_func(write_png_bytes, &sink, w, h, c, hwc, w * c) && sink.ok;
    ok = sink.f && fclose(sink.f) == 0 && ok;
    mml_free(hwc);
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mml_error(MML_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    return MML_OK;
}
