/* libFuzzer target: IDX parsing, plain and gzip. */
#include <stdint.h>

#include "mml/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mml_tensor_free(mml_idx_parse(data, size, "fuzz.idx"));
    return 0;
}
