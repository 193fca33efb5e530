/* libFuzzer target: JSON configuration parsing and typed access. */
#include <stdint.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = mml_malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    mml_config *cfg = NULL;
    if (mml_config_parse(text, "fuzz.json", &cfg) == MML_OK) {
        mml_cfg_node root = mml_config_root(cfg), model, arr;
        int64_t i;
        double f;
        mml_cfg_int(&root, "epochs", 1, &i);
        mml_cfg_float(&root, "lr", 0.1, &f);
        if (mml_cfg_object(&root, "model", false, &model) == MML_OK &&
            mml_cfg_array(&model, "layers", false, &arr) == MML_OK)
            for (int k = 0; k < mml_cfg_len(&arr); k++) {
                mml_cfg_node it = mml_cfg_at(&arr, k);
                const char *s;
                mml_cfg_string(&it, "type", NULL, &s);
            }
        static const char *const keys[] = { "epochs", "lr", "model", NULL };
        mml_cfg_check_keys(&root, keys);
        mml_config_free(cfg);
    }
    mml_free(text);
    return 0;
}
