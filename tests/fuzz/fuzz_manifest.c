/* libFuzzer target: the JSONL manifest parser. */
#include <stddef.h>
#include <stdint.h>

#include "mml/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mml_manifest *m = NULL;
    if (mml_manifest_parse((const char *)data, size, "fuzz/m.jsonl", &m) != MML_OK) return 0;
    char **names;
    int n = mml_manifest_classes(m, "label", &names);
    if (n >= 0) {
        for (int64_t i = 0; i < m->n; i++) mml_manifest_class_of(m, &m->samples[i], "label", names, n);
        mml_classes_free(names, n);
    }
    mml_manifest_free(m);
    return 0;
}
