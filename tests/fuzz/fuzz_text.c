/* libFuzzer target: normalisation, words and CLIP BPE of arbitrary bytes.
 * The merges are read from MML_DATASETS (default ../shared/datasets). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/text.h"

static mml_bpe *g_bpe;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("MML_DATASETS");
    char path[1024];
    snprintf(path, sizeof path, "%s/clip-bpe/bpe_simple_vocab_16e6.txt.gz", dir ? dir : "../shared/datasets");
    if (mml_bpe_load_clip(path, &g_bpe) != MML_OK) g_bpe = NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = mml_malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    mml_free(mml_text_normalize(s, MML_TEXT_NFKC | MML_TEXT_CASEFOLD));
    mml_words w;
    if (mml_text_words(s, MML_WORDS_LOWER | MML_WORDS_DROP_STOPWORDS | MML_WORDS_STEM, &w) == MML_OK) mml_words_free(&w);
    int32_t ids[96];
    if (g_bpe) mml_bpe_encode_clip(g_bpe, s, ids, 96, 77);
    mml_free(s);
    return 0;
}
