/* mml/text.h: text in: UTF-8 validation, Unicode normalisation (NFKC, case
 * folding; Debian's utf8proc), a word tokenizer with English stop words and
 * Snowball stemming (libstemmer), word vocabularies, byte-level BPE as
 * OpenAI's CLIP does it (and trained from a corpus), and batches of ids with
 * attention masks. File formats: docs/text.md.
 *
 *     mml_bpe *bpe;
 *     if (mml_bpe_load_clip("bpe_simple_vocab_16e6.txt.gz", &bpe) != MML_OK) ...
 *     int32_t ids[77];
 *     int n = mml_bpe_encode_clip(bpe, "a photo of a cat", ids, 77, 77);
 *     // 49406 320 1125 539 320 2368 49407 0 0 ...
 *
 *     mml_vocab_opts o = mml_vocab_default_opts();   // <pad> <unk> <bos> <eos>
 *     mml_vocab *v;
 *     mml_vocab_from_corpus("corpus.txt", &o, &v);   // or mml_vocab_load
 *     mml_text_batch b;
 *     mml_text_batch_opts bo = { .max_length = 16, .padding = MML_PAD_LONGEST, .truncation = true,
 *                                .bos_eos = true, .dtype = MML_I64 };
 *     mml_text_encode_batch(v, NULL, texts, n, &bo, &b);  // b.ids, b.mask [n, L]; b.lengths [n]
 *
 * Thread safety: a loaded mml_bpe or mml_vocab is read-only and may be shared. */
#ifndef MML_TEXT_H
#define MML_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mml/error.h"
#include "mml/tensor.h"

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

/* A merges file (gzip or plain): a header line, then "first second" per
 * line, rank order. Vocabulary ids: 256 byte symbols, the same 256 with
 * "</w>", one per merge, then <|startoftext|> and <|endoftext|>. CLIP's own
 * file (its header names bpe_simple_vocab_16e6) uses its first 48,894 merges
 * as CLIP does. Errors name path:line. */
mml_status mml_bpe_load(const char *path, mml_bpe **out);
/* The same from memory (`name` for messages). */
mml_status mml_bpe_parse(const char *text, size_t len, const char *name, mml_bpe **out);
/* mml_bpe_load, and an error unless it is CLIP's vocabulary (ids 0..49407). */
mml_status mml_bpe_load_clip(const char *path, mml_bpe **out);
int32_t mml_bpe_vocab_size(const mml_bpe *bpe);
int32_t mml_bpe_merges(const mml_bpe *bpe);
int32_t mml_bpe_sot(const mml_bpe *bpe); /* <|startoftext|>: 49406 for CLIP */
int32_t mml_bpe_eot(const mml_bpe *bpe); /* <|endoftext|>: 49407 for CLIP */
void mml_bpe_free(mml_bpe *bpe);
/* Token ids of text as clip.tokenize gives them (SimpleTokenizer without ftfy
 * and HTML unescaping): 49406, the BPE ids, 49407; when `context` > 0 the ids
 * are truncated (keeping 49407 last) or zero-padded to exactly `context`.
 * Writes at most cap ids and returns how many there are (more than cap means
 * truncated output), or -1 with an error for invalid UTF-8. */
int mml_bpe_encode_clip(const mml_bpe *bpe, const char *text, int32_t *ids, int cap, int context);

enum { MML_TEXT_BOS = 1, MML_TEXT_EOS = 2 };
/* BPE ids of text, with <|startoftext|> / <|endoftext|> as flags ask; the
 * same return convention as mml_bpe_encode_clip. */
int mml_bpe_encode(const mml_bpe *bpe, const char *text, int flags, int32_t *ids, int cap);
/* Text of ids (heap; mml_free): symbols joined, "</w>" read as a space, the
 * final space dropped, special tokens skipped. NULL with an error for an id
 * outside the vocabulary or bytes that are not UTF-8. */
char *mml_bpe_decode(const mml_bpe *bpe, const int32_t *ids, int n);

/* BPE training (Sennrich et al. on CLIP's byte symbols): the corpus is cleaned
 * and pre-tokenized as the encoder does, each word starts as its bytes with
 * "</w>" on the last, and the most frequent adjacent pair is merged until
 * n_merges or no pair is left; ties go to the pair whose first symbol, then
 * second symbol, is smaller bytewise. Writes the merges file (temp name, then
 * rename); *done (may be NULL) gets the number of merges made. */
mml_status mml_bpe_train_file(const char *corpus, int n_merges, const char *out_path, int *done);
/* The same on texts in memory, the merges file as a heap string. */
mml_status mml_bpe_train_texts(const char *const *texts, int n, int n_merges, char **merges, int *done);

/* ---- word vocabularies ---- */

typedef struct mml_vocab mml_vocab;

typedef struct mml_vocab_opts {
    int words_flags;            /* MML_WORDS_*: how texts become words */
    int64_t min_freq;           /* words seen fewer times are left out (>= 1) */
    int32_t max_size;           /* total tokens, specials included; 0 = no limit */
    const char *const *specials; /* ids 0..n-1, in the roles PAD, UNK, BOS, EOS, then any extra */
    int n_specials;             /* at least 4 */
} mml_vocab_opts;

/* Lower-cased words, min_freq 1, no limit, <pad> <unk> <bos> <eos>. */
mml_vocab_opts mml_vocab_default_opts(void);
/* Counts the words of each corpus line (UTF-8; errors name path:line) or of
 * each text; specials first, then words with count >= min_freq by count
 * descending, then bytes ascending, cut to max_size. An error when no word
 * is left. */
mml_status mml_vocab_from_corpus(const char *path, const mml_vocab_opts *o, mml_vocab **out);
mml_status mml_vocab_from_texts(const char *const *texts, int n, const mml_vocab_opts *o, mml_vocab **out);
/* The text format of docs/text.md; saving writes a temp file then renames. */
mml_status mml_vocab_save(const mml_vocab *v, const char *path);
mml_status mml_vocab_load(const char *path, mml_vocab **out);
mml_status mml_vocab_parse(const char *text, size_t len, const char *name, mml_vocab **out);
void mml_vocab_free(mml_vocab *v);

int32_t mml_vocab_size(const mml_vocab *v);
int32_t mml_vocab_n_specials(const mml_vocab *v);
int mml_vocab_words_flags(const mml_vocab *v);
int32_t mml_vocab_id(const mml_vocab *v, const char *token); /* -1 when absent */
const char *mml_vocab_token(const mml_vocab *v, int32_t id); /* NULL when out of range */
int64_t mml_vocab_count(const mml_vocab *v, int32_t id);     /* corpus count; 0 for specials */
enum { MML_VOCAB_PAD = 0, MML_VOCAB_UNK = 1, MML_VOCAB_BOS = 2, MML_VOCAB_EOS = 3 };
/* Ids of text's words (UNK for unknown ones), BOS/EOS as flags ask; the same
 * return convention as mml_bpe_encode. */
int mml_vocab_encode(const mml_vocab *v, const char *text, int flags, int32_t *ids, int cap);

/* ---- batches ---- */

typedef enum { MML_PAD_LONGEST, MML_PAD_MAX_LENGTH } mml_padding;

typedef struct mml_text_batch_opts {
    int max_length;     /* L for MML_PAD_MAX_LENGTH; the truncation limit; 0 = none */
    mml_padding padding; /* pad on the right to the longest text or to max_length */
    bool truncation;    /* cut texts to max_length (keeping EOS last); else longer is an error */
    bool bos_eos;       /* add BOS/EOS (<|startoftext|>/<|endoftext|> for BPE) */
    mml_dtype dtype;    /* MML_I64 or MML_I32, for ids and lengths */
    int32_t pad_id;     /* < 0: the tokenizer's (PAD of a vocabulary, 0 for BPE as CLIP) */
} mml_text_batch_opts;

typedef struct mml_text_batch {
    mml_tensor *ids;     /* [N, L] */
    mml_tensor *mask;    /* [N, L] of dtype: 1 for tokens, 0 for padding */
    mml_tensor *lengths; /* [N] tokens per row after truncation */
} mml_text_batch;

/* Encodes n texts with exactly one of vocab or bpe, as HuggingFace tokenizers
 * do with padding="longest"/"max_length". Errors name the text index. */
mml_status mml_text_encode_batch(const mml_vocab *vocab, const mml_bpe *bpe, const char *const *texts, int n,
                                 const mml_text_batch_opts *o, mml_text_batch *out);
void mml_text_batch_free(mml_text_batch *b);

#endif
