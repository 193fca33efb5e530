#include <errno.h>
#include <stdio.h>
#include <string.h>

#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#include <stb_image.h>

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
