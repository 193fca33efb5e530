/* libFuzzer target: image decoding with the size check in front of stb. */
#include <stdint.h>

#include "mml/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mml_tensor_free(mml_image_decode(data, size, 0, "fuzz.img"));
    return 0;
}
