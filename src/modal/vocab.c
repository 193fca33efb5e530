/* Word vocabularies: counted from a corpus, saved as text, looked up through
 * a hash table (token -> id) and an array (id -> token). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/text.h"
#include "modal/text_internal.h"

struct mml_vocab {
    strtab tab; /* id -> token and count */
    int32_t n_specials;
    int words_flags;
};

static const char *const DEFAULT_SPECIALS[] = { "<pad>", "<unk>", "<bos>", "<eos>" };

mml_vocab_opts mml_vocab_default_opts(void)
{
    return (mml_vocab_opts){ .words_flags = MML_WORDS_LOWER, .min_freq = 1, .max_size = 0,
                             .specials = DEFAULT_SPECIALS, .n_specials = 4 };
}

void mml_vocab_free(mml_vocab *v)
{
    if (!v) return;
    strtab_free(&v->tab);
    mml_free(v);
}

int32_t mml_vocab_size(const mml_vocab *v) { return v->tab.n; }
int32_t mml_vocab_n_specials(const mml_vocab *v) { return v->n_specials; }
int mml_vocab_words_flags(const mml_vocab *v) { return v->words_flags; }
int32_t mml_vocab_id(const mml_vocab *v, const char *token) { return strtab_find(&v->tab, token, strlen(token)); }
const char *mml_vocab_token(const mml_vocab *v, int32_t id) { return id >= 0 && id < v->tab.n ? v->tab.keys[id] : NULL; }
int64_t mml_vocab_count(const mml_vocab *v, int32_t id) { return id >= 0 && id < v->tab.n ? v->tab.counts[id] : 0; }

/* A token the file format can hold: non-empty UTF-8 without whitespace controls. */
static const char *token_problem(const char *tok, size_t n)
{
    if (!n) return "is empty";
    if (text_bad_utf8_at(tok, n) < n) return "is not UTF-8";
    for (size_t i = 0; i < n; i++)
        if (tok[i] == '\t' || tok[i] == '\n' || tok[i] == '\r' || tok[i] == ' ') return "contains a space, tab or line break";
    return NULL;
}

static mml_status check_opts(const mml_vocab_opts *o)
{
    if (o->n_specials < 4 || !o->specials)
        return mml_error(MML_ERR_ARG, "vocabulary: needs at least 4 special tokens (PAD, UNK, BOS, EOS), got %d", o->n_specials);
    if (o->min_freq < 1) return mml_error(MML_ERR_ARG, "vocabulary: min_freq must be at least 1");
    if (o->max_size < 0 || (o->max_size > 0 && o->max_size <= o->n_specials))
        return mml_error(MML_ERR_ARG, "vocabulary: max_size %d leaves no room after %d special tokens", (int)o->max_size,
                         o->n_specials);
    for (int i = 0; i < o->n_specials; i++) {
        const char *why = o->specials[i] ? token_problem(o->specials[i], strlen(o->specials[i])) : "is missing";
        if (why) return mml_error(MML_ERR_ARG, "vocabulary: special token %d %s", i, why);
        for (int j = 0; j < i; j++)
            if (!strcmp(o->specials[i], o->specials[j]))
                return mml_error(MML_ERR_ARG, "vocabulary: special token '%s' given twice", o->specials[i]);
    }
    return MML_OK;
}

static mml_status count_text(strtab *counts, const char *text, int flags)
{
    mml_words w;
    mml_status rc = mml_text_words(text, flags, &w);
    for (int i = 0; i < w.n && rc == MML_OK; i++) rc = strtab_add(counts, w.words[i], strlen(w.words[i]), 1, NULL);
    mml_words_free(&w);
    return rc;
}

typedef struct ranked {
    int64_t count;
    const char *token;
} ranked;

static int by_count_then_bytes(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->token, b->token); /* strcmp compares as unsigned bytes */
}

/* Specials, then the words of `counts` that pass min_freq, most frequent first. */
static mml_status build(const strtab *counts, const mml_vocab_opts *o, const char *what, mml_vocab **out)
{
    if (!counts->n) return mml_error(MML_ERR_FORMAT, "%s: no words", what);
    ranked *r = mml_malloc((size_t)counts->n * sizeof *r);
    mml_vocab *v = r ? mml_calloc(1, sizeof *v) : NULL;
    if (!v) {
        mml_free(r);
        return mml_error(MML_ERR_NOMEM, "%s: out of memory", what);
    }
    v->n_specials = o->n_specials;
    v->words_flags = o->words_flags;
    mml_status rc = MML_OK;
    for (int i = 0; i < o->n_specials && rc == MML_OK; i++) rc = strtab_add(&v->tab, o->specials[i], strlen(o->specials[i]), 0, NULL);
    int32_t n = 0;
    for (int32_t i = 0; i < counts->n; i++)
        if (counts->counts[i] >= o->min_freq && strtab_find(&v->tab, counts->keys[i], strlen(counts->keys[i])) < 0)
            r[n++] = (ranked){ counts->counts[i], counts->keys[i] };
    qsort(r, (size_t)n, sizeof *r, by_count_then_bytes);
    if (o->max_size && n > o->max_size - o->n_specials) n = o->max_size - o->n_specials;
    if (rc == MML_OK && !n) rc = mml_error(MML_ERR_ARG, "%s: no word occurs %lld times or more", what, (long long)o->min_freq);
    for (int32_t i = 0; i < n && rc == MML_OK; i++) rc = strtab_add(&v->tab, r[i].token, strlen(r[i].token), r[i].count, NULL);
    mml_free(r);
    if (rc != MML_OK) {
        mml_vocab_free(v);
        return rc;
    }
    *out = v;
    return MML_OK;
}

mml_status mml_vocab_from_texts(const char *const *texts, int n, const mml_vocab_opts *o, mml_vocab **out)
{
    *out = NULL;
    mml_status rc = check_opts(o);
    strtab counts = { 0 };
    for (int i = 0; i < n && rc == MML_OK; i++)
        if ((rc = count_text(&counts, texts[i], o->words_flags)) != MML_OK) mml_error_prefix("texts[%d]: ", i);
    if (rc == MML_OK) rc = build(&counts, o, "texts", out);
    strtab_free(&counts);
    return rc;
}

typedef struct corpus_counts {
    strtab counts;
    int flags;
} corpus_counts;

static mml_status count_line(char *line, size_t len, const char *path, int64_t lineno, void *user)
{
    (void)len;
    corpus_counts *c = user;
    mml_status rc = count_text(&c->counts, line, c->flags);
    if (rc != MML_OK) mml_error_prefix("%s:%lld: ", path, (long long)lineno);
    return rc;
}

mml_status mml_vocab_from_corpus(const char *path, const mml_vocab_opts *o, mml_vocab **out)
{
    *out = NULL;
    mml_status rc = check_opts(o);
    corpus_counts c = { .flags = o->words_flags };
    if (rc == MML_OK) rc = corpus_for_each_line(path, count_line, &c);
    if (rc == MML_OK) rc = build(&c.counts, o, path, out);
    strtab_free(&c.counts);
    return rc;
}

/* ---- the file ---- */

#define VOCAB_MAGIC "#mml-vocab 1"

mml_status mml_vocab_save(const mml_vocab *v, const char *path)
{
    size_t cap = 128;
    for (int32_t i = 0; i < v->tab.n; i++) cap += strlen(v->tab.keys[i]) + 24;
    char *buf = mml_malloc(cap);
    if (!buf) return mml_error(MML_ERR_NOMEM, "%s: out of memory", path);
    size_t n = (size_t)snprintf(buf, cap, VOCAB_MAGIC " specials=%d lower=%d stopwords=%d stem=%d\n", (int)v->n_specials,
                                !!(v->words_flags & MML_WORDS_LOWER), !!(v->words_flags & MML_WORDS_DROP_STOPWORDS),
                                !!(v->words_flags & MML_WORDS_STEM));
    for (int32_t i = 0; i < v->tab.n; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s\t%lld\n", v->tab.keys[i], (long long)v->tab.counts[i]);
    mml_status rc = text_write_file(path, buf, n);
    mml_free(buf);
    return rc;
}

static mml_status parse_header(const char *line, const char *name, mml_vocab *v)
{
    int specials, lower, stop, stem, end = 0;
    if (sscanf(line, VOCAB_MAGIC " specials=%d lower=%d stopwords=%d stem=%d%n", &specials, &lower, &stop, &stem, &end) != 4 ||
        line[end] != '\0' || (lower | stop | stem) & ~1)
        return mml_error(MML_ERR_FORMAT, "%s:1: expected \"" VOCAB_MAGIC " specials=N lower=0|1 stopwords=0|1 stem=0|1\"", name);
    if (specials < 4) return mml_error(MML_ERR_FORMAT, "%s:1: needs at least 4 special tokens (PAD, UNK, BOS, EOS), declares %d", name, specials);
    v->n_specials = specials;
    v->words_flags = (lower ? MML_WORDS_LOWER : 0) | (stop ? MML_WORDS_DROP_STOPWORDS : 0) | (stem ? MML_WORDS_STEM : 0);
    return MML_OK;
}

/* One "token<TAB>count" line, NUL-terminated. */
static mml_status parse_entry(mml_vocab *v, char *line, const char *name, int64_t lineno)
{
    char *tab = strchr(line, '\t');
    if (!tab) return mml_error(MML_ERR_FORMAT, "%s:%lld: expected token<TAB>count", name, (long long)lineno);
    const char *why = token_problem(line, (size_t)(tab - line));
    if (why) return mml_error(MML_ERR_FORMAT, "%s:%lld: the token %s", name, (long long)lineno, why);
    char *end;
    long long count = strtoll(tab + 1, &end, 10);
    if (end == tab + 1 || *end || count < 0 || tab[1] == '-' || tab[1] == '+' || tab[1] == ' ')
        return mml_error(MML_ERR_FORMAT, "%s:%lld: the count is not a non-negative integer", name, (long long)lineno);
    int32_t prev = strtab_find(&v->tab, line, (size_t)(tab - line));
    *tab = '\0';
    if (prev >= 0) return mml_error(MML_ERR_FORMAT, "%s:%lld: token '%s' repeats line %d", name, (long long)lineno, line, (int)prev + 2);
    return strtab_add(&v->tab, line, (size_t)(tab - line), count, NULL);
}

mml_status mml_vocab_parse(const char *text, size_t len, const char *name, mml_vocab **out)
{
    *out = NULL;
    mml_vocab *v = mml_calloc(1, sizeof *v);
    char *buf = v ? mml_malloc(len + 1) : NULL;
    if (!buf) {
        mml_free(v);
        return mml_error(MML_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    mml_status rc = MML_OK;
    int64_t lineno = 1;
    for (size_t pos = 0; pos < len && rc == MML_OK; lineno++) {
        char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = (nl ? (size_t)(nl - buf) : len) - pos;
        if (memchr(buf + pos, '\0', n)) {
            rc = mml_error(MML_ERR_FORMAT, "%s:%lld: NUL byte", name, (long long)lineno);
            break;
        }
        buf[pos + n] = '\0';
        if (n && buf[pos + n - 1] == '\r') buf[pos + n - 1] = '\0';
        rc = lineno == 1 ? parse_header(buf + pos, name, v) : parse_entry(v, buf + pos, name, lineno);
        pos += n + 1;
    }
    if (rc == MML_OK && lineno == 1) rc = mml_error(MML_ERR_FORMAT, "%s: empty, expected the " VOCAB_MAGIC " header", name);
    if (rc == MML_OK && v->tab.n <= v->n_specials)
        rc = mml_error(MML_ERR_FORMAT, "%s:%lld: missing tokens: the header declares %d special tokens and a word must follow, found %d lines",
                       name, (long long)lineno, (int)v->n_specials, (int)v->tab.n);
    mml_free(buf);
    if (rc != MML_OK) {
        mml_vocab_free(v);
        return rc;
    }
    *out = v;
    return MML_OK;
}

mml_status mml_vocab_load(const char *path, mml_vocab **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    mml_status rc = mml_file_read(path, (size_t)256 << 20, &buf, &len);
    if (rc != MML_OK) return rc;
    rc = mml_vocab_parse((const char *)buf, len, path, out);
    mml_free(buf);
    return rc;
}

int mml_vocab_encode(const mml_vocab *v, const char *text, int flags, int32_t *ids, int cap)
{
    mml_words w;
    if (mml_text_words(text, v->words_flags, &w) != MML_OK) return -1;
    int n = 0;
    if (flags & MML_TEXT_BOS) {
        if (n < cap) ids[n] = MML_VOCAB_BOS;
        n++;
    }
    for (int i = 0; i < w.n; i++, n++) {
        int32_t id = mml_vocab_id(v, w.words[i]);
        if (n < cap) ids[n] = id < 0 ? MML_VOCAB_UNK : id;
    }
    if (flags & MML_TEXT_EOS) {
        if (n < cap) ids[n] = MML_VOCAB_EOS;
        n++;
    }
    mml_words_free(&w);
    return n;
}
