/* libFuzzer target: the vocabulary and BPE merges file parsers; what parses
 * must also encode, decode and (for a vocabulary) look up its own tokens. */
#include <stdint.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const text = "the quick Brown fox, 3.5 times! <|endoftext|>";
    int32_t ids[64];
    mml_vocab *v;
    if (mml_vocab_parse((const char *)data, size, "fuzz.vocab", &v) == MML_OK) {
        for (int32_t i = 0; i < mml_vocab_size(v); i++)
            if (mml_vocab_id(v, mml_vocab_token(v, i)) != i) __builtin_trap();
        mml_vocab_encode(v, text, MML_TEXT_BOS | MML_TEXT_EOS, ids, 64);
        mml_vocab_free(v);
    }
    mml_bpe *b;
    if (mml_bpe_parse((const char *)data, size, "fuzz.merges", &b) == MML_OK) {
        int n = mml_bpe_encode(b, text, MML_TEXT_BOS | MML_TEXT_EOS, ids, 64);
        mml_free(mml_bpe_decode(b, ids, n < 64 ? n : 64));
        mml_bpe_free(b);
    }
    return 0;
}
