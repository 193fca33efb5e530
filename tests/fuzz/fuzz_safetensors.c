/* libFuzzer target: the safetensors parser must refuse bad input cleanly and
 * every accepted tensor must lie inside the buffer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mml/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mml_safetensors *st = NULL;
    if (mml_safetensors_parse(data, size, "fuzz", &st) != MML_OK) return 0;
    for (int i = 0; i < mml_safetensors_count(st); i++) {
        const mml_st_entry *e = mml_safetensors_at(st, i);
        mml_tensor *t = mml_safetensors_tensor(st, e->name, MML_F32);
        mml_tensor_free(t);
    }
    mml_safetensors_free(st);
    return 0;
}
