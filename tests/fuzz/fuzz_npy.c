/* libFuzzer target: .npy parsing in every load mode, and .npz archives (the
 * central directory, then every member). */
#include <stdint.h>

#include "mml/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (mml_npz_sniff(data, size)) {
        mml_npz *z;
        if (mml_npz_parse(data, size, "fuzz.npz", &z) != MML_OK) return 0;
        for (int i = 0; i < mml_npz_count(z) && i < 8; i++) mml_tensor_free(mml_npz_load_at(z, i, MML_NPY_NATIVE, NULL));
        mml_npz_free(z);
        return 0;
    }
    static const int modes[] = { MML_F32, MML_I64, MML_I32, MML_U8, MML_NPY_NATIVE };
    for (int i = 0; i < 5; i++) mml_tensor_free(mml_npy_parse(data, size, modes[i], "fuzz.npy", NULL));
    return 0;
}
