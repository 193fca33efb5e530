/* mml/text.h: text in: UTF-8 validation, Unicode normalisation (NFKC, case
 * folding; Debian's utf8proc), a word tokenizer with English stop words and
 * Snowball stemming (libstemmer), and byte-level BPE as OpenAI's CLIP does it.
 *
 *     mml_bpe *bpe;
 *     if (mml_bpe_load_clip("bpe_simple_vocab_16e6.txt.gz", &bpe) != MML_OK) ...
 *     int32_t ids[77];
 *     int n = mml_bpe_encode_clip(bpe, "a photo of a cat", ids, 77, 77);
 *     // 49406 320 1125 539 320 2368 49407 0 0 ...
 *
 * Thread safety: a loaded mml_bpe is read-only and may be shared. */
#ifndef MML_TEXT_H
#define MML_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "mml/error.h"

/* MML_OK, or MML_ERR_FORMAT naming `what` and the byte offset of the first invalid sequence. */
mml_status mml_text_validate(const char *s, size_t len, const char *what);

enum { MML_TEXT_NFKC = 1, MML_TEXT_CASEFOLD = 2 };
/* Normalised copy (heap; mml_free), or NULL with an error on invalid UTF-8. */
char *mml_text_normalize(const char *s, int flags);

typedef struct mml_words {
    char **words;
    int n;
} mml_words;

enum { MML_WORDS_LOWER = 1, MML_WORDS_DROP_STOPWORDS = 2, MML_WORDS_STEM = 4 };
/* Splits on whitespace and punctuation (Unicode categories), keeping numbers
 * with their decimal point ("3.5") as one token. */
mml_status mml_text_words(const char *s, int flags, mml_words *out);
void mml_words_free(mml_words *w);
/* True for the English stop words of docs/text.md. */
int mml_text_is_stopword(const char *word);

/* Byte-level BPE. */
typedef struct mml_bpe mml_bpe;

#define MML_CLIP_SOT 49406
#define MML_CLIP_EOT 49407

/* CLIP's merges file (gzip or plain): header line, then 48,894 merges used. */
mml_status mml_bpe_load_clip(const char *path, mml_bpe **out);
void mml_bpe_free(mml_bpe *bpe);
/* Token ids of text as clip.tokenize gives them (SimpleTokenizer without ftfy
 * and HTML unescaping): 49406, the BPE ids, 49407; when `context` > 0 the ids
 * are truncated (keeping 49407 last) or zero-padded to exactly `context`.
 * Writes at most cap ids and returns how many there are (more than cap means
 * truncated output), or -1 with an error for invalid UTF-8. */
int mml_bpe_encode_clip(const mml_bpe *bpe, const char *text, int32_t *ids, int cap, int context);

#endif
