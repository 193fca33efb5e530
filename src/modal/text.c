/* Text: UTF-8 checks and normalisation with utf8proc, words, stop words,
 * Snowball stemming, and CLIP's byte-level BPE. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <libstemmer.h>
#include <utf8proc.h>

#include "mml/alloc.h"
#include "mml/text.h"

mml_status mml_text_validate(const char *s, size_t len, const char *what)
{
    size_t pos = 0;
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos), &cp);
        if (n < 1) return mml_error(MML_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", what, pos);
        pos += (size_t)n;
    }
    return MML_OK;
}

char *mml_text_normalize(const char *s, int flags)
{
    if (mml_text_validate(s, strlen(s), "text") != MML_OK) return NULL;
    int opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    if (flags & MML_TEXT_NFKC) opt |= UTF8PROC_COMPAT;
    if (flags & MML_TEXT_CASEFOLD) opt |= UTF8PROC_CASEFOLD;
    utf8proc_uint8_t *out = NULL;
    if (utf8proc_map((const utf8proc_uint8_t *)s, 0, &out, (utf8proc_option_t)(opt | UTF8PROC_NULLTERM)) < 0) {
        mml_error(MML_ERR_FORMAT, "text: cannot normalise");
        return NULL;
    }
    char *copy = mml_strdup((const char *)out);
    free(out); /* from utf8proc */
    return copy;
}

/* ---- words ---- */

static const char *const STOPWORDS[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    NULL,
};

int mml_text_is_stopword(const char *word)
{
    for (int i = 0; STOPWORDS[i]; i++)
        if (!strcmp(word, STOPWORDS[i])) return 1;
    return 0;
}

static int category_class(utf8proc_int32_t cp)
{
    utf8proc_category_t c = utf8proc_category(cp);
    if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) return 'L';
    if (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) return 'N';
    if (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME) return 'M'; /* marks join letters */
    if (c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP || cp == '\t' ||
        cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x85)
        return 'S';
    return 'P';
}

static mml_status push_word(mml_words *w, const char *s, size_t n, int flags, struct sb_stemmer *stem)
{
    char *word = mml_malloc(n + 1);
    if (!word) return MML_ERR_NOMEM;
    memcpy(word, s, n);
    word[n] = '\0';
    if (flags & MML_WORDS_LOWER) {
        char *low = mml_text_normalize(word, MML_TEXT_CASEFOLD);
        mml_free(word);
        if (!low) return mml_last_status();
        word = low;
    }
    if ((flags & MML_WORDS_DROP_STOPWORDS) && mml_text_is_stopword(word)) {
        mml_free(word);
        return MML_OK;
    }
    if (stem) {
        const sb_symbol *st = sb_stemmer_stem(stem, (const sb_symbol *)word, (int)strlen(word));
        char *stemmed = st ? mml_strdup((const char *)st) : NULL;
        if (stemmed) {
            mml_free(word);
            word = stemmed;
        }
    }
    char **v = mml_realloc(w->words, (size_t)(w->n + 1) * sizeof *v);
    if (!v) {
        mml_free(word);
        return MML_ERR_NOMEM;
    }
    w->words = v;
    w->words[w->n++] = word;
    return MML_OK;
}

mml_status mml_text_words(const char *s, int flags, mml_words *out)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(s);
    mml_status rc = mml_text_validate(s, len, "text");
    struct sb_stemmer *stem = NULL;
    if (rc == MML_OK && (flags & MML_WORDS_STEM) && !(stem = sb_stemmer_new("english", NULL)))
        rc = mml_error(MML_ERR_UNSUPPORTED, "text: the English Snowball stemmer is not available");
    size_t pos = 0, start = 0;
    int in_word = 0; /* 0 none, 'L' letters, 'N' number */
    while (rc == MML_OK && pos <= len) {
        utf8proc_int32_t cp = 0;
        utf8proc_ssize_t n = pos < len ? utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos), &cp) : 0;
        int cls = pos < len ? category_class(cp) : 'S';
        /* A decimal point or comma between digits stays inside a number. */
        if (in_word == 'N' && (cp == '.' || cp == ',') && pos + 1 < len && s[pos + 1] >= '0' && s[pos + 1] <= '9') cls = 'N';
        bool joins = in_word && (cls == in_word || cls == 'M' || (in_word == 'L' && cls == 'N') || (in_word == 'N' && cls == 'L'));
        if (in_word && !joins) {
            rc = push_word(out, s + start, pos - start, flags, stem);
            in_word = 0;
        }
        if (!in_word && (cls == 'L' || cls == 'N')) {
            in_word = cls;
            start = pos;
        }
        pos += n > 0 ? (size_t)n : 1;
    }
    if (stem) sb_stemmer_delete(stem);
    if (rc != MML_OK) mml_words_free(out);
    return rc;
}

void mml_words_free(mml_words *w)
{
    for (int i = 0; i < w->n; i++) mml_free(w->words[i]);
    mml_free(w->words);
    memset(w, 0, sizeof *w);
}
