/* CLIP's byte-level BPE (SimpleTokenizer): bytes are mapped to printable code
 * points, words found by CLIP's pre-tokenizer, and merges applied lowest rank
 * first. Tables are open-addressing string maps built once at load. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <utf8proc.h>

#include "mml/alloc.h"
#include "mml/text.h"

#define CLIP_MERGES (49152 - 256 - 2)

typedef struct strmap {
    char **keys;
    int32_t *vals;
    size_t cap; /* power of two */
} strmap;

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static mml_status map_init(strmap *m, size_t n)
{
    m->cap = 1;
    while (m->cap < 2 * n) m->cap <<= 1;
    m->keys = mml_calloc(m->cap, sizeof *m->keys);
    m->vals = mml_calloc(m->cap, sizeof *m->vals);
    return m->keys && m->vals ? MML_OK : MML_ERR_NOMEM;
}

static void map_free(strmap *m)
{
    for (size_t i = 0; m->keys && i < m->cap; i++) mml_free(m->keys[i]);
    mml_free(m->keys);
    mml_free(m->vals);
}

/* First insertion of a key wins (as a Python dict built in order keeps the last, so callers insert unique keys). */
static mml_status map_put(strmap *m, const char *key, int32_t val)
{
    size_t n = strlen(key), i = hash_str(key, n) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) {
            m->vals[i] = val;
            return MML_OK;
        }
        i = (i + 1) & (m->cap - 1);
    }
    if (!(m->keys[i] = mml_strdup(key))) return MML_ERR_NOMEM;
    m->vals[i] = val;
    return MML_OK;
}

static int32_t map_get(const strmap *m, const char *key, size_t n)
{
    size_t i = hash_str(key, n) & (m->cap - 1);
    while (m->keys[i]) {
        if (strlen(m->keys[i]) == n && !memcmp(m->keys[i], key, n)) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

struct mml_bpe {
    strmap encoder; /* token -> id */
    strmap ranks;   /* "first second" -> merge rank */
    char byte_sym[256][4]; /* byte -> its printable code point, UTF-8 */
};

void mml_bpe_free(mml_bpe *b)
{
    if (!b) return;
    map_free(&b->encoder);
    map_free(&b->ranks);
    mml_free(b);
}

/* bytes_to_unicode(): printable Latin-1 bytes map to themselves, the others
 * to 256, 257, ... in byte order; the vocabulary lists them in that order. */
static void byte_table(mml_bpe *b, int order[256])
{
    int n = 0, extra = 0;
    bool printable[256] = { false };
    for (int c = '!'; c <= '~'; c++) printable[c] = true;
    for (int c = 0xA1; c <= 0xAC; c++) printable[c] = true;
    for (int c = 0xAE; c <= 0xFF; c++) printable[c] = true;
    for (int c = 0; c < 256; c++)
        if (printable[c]) order[n++] = c;
    for (int c = 0; c < 256; c++)
        if (!printable[c]) order[n++] = c;
    for (int i = 0; i < 256; i++) {
        int c = order[i], cp = printable[c] ? c : 256 + extra++;
        utf8proc_encode_char(cp, (utf8proc_uint8_t *)b->byte_sym[c]);
        b->byte_sym[c][cp < 0x80 ? 1 : 2] = '\0';
    }
}

static char *read_all(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (!f) {
        mml_error(MML_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    char *buf = mml_malloc(cap + 1);
    int got;
    while (buf && (got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) {
            if (cap > ((size_t)64 << 20)) {
                mml_error(MML_ERR_FORMAT, "%s: larger than 64 MiB", path);
                mml_free(buf);
                buf = NULL;
                break;
            }
            char *nb = mml_realloc(buf, 2 * cap + 1);
            if (!nb) {
                mml_free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    gzclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static mml_status load_merges(mml_bpe *b, char *text, const char *path)
{
    char *line = strchr(text, '\n'), token[512];
    int rank = 0, lineno = 1;
    while (line && rank < CLIP_MERGES) {
        char *start = line + 1;
        line = strchr(start, '\n');
        if (line) *line = '\0';
        lineno++;
        char *sp = strchr(start, ' ');
        if (!sp || strchr(sp + 1, ' ') || sp == start || !sp[1] || strlen(start) >= sizeof token)
            return mml_error(MML_ERR_FORMAT, "%s:%d: expected two symbols separated by one space", path, lineno);
        mml_status rc = map_put(&b->ranks, start, rank);
        *sp = '\0';
        snprintf(token, sizeof token, "%s%s", start, sp + 1);
        if (rc == MML_OK) rc = map_put(&b->encoder, token, 512 + rank);
        if (rc != MML_OK) return rc;
        rank++;
    }
    if (rank < CLIP_MERGES)
        return mml_error(MML_ERR_FORMAT, "%s: has %d merges, CLIP's vocabulary needs %d", path, rank, CLIP_MERGES);
    return MML_OK;
}

mml_status mml_bpe_load_clip(const char *path, mml_bpe **out)
{
    *out = NULL;
    size_t len;
    char *text = read_all(path, &len);
    if (!text) return mml_last_status();
    mml_bpe *b = mml_calloc(1, sizeof *b);
    mml_status rc = b ? mml_text_validate(text, len, path) : MML_ERR_NOMEM;
    if (rc == MML_OK) rc = map_init(&b->encoder, 49408);
    if (rc == MML_OK) rc = map_init(&b->ranks, CLIP_MERGES);
    if (rc == MML_OK) {
        int order[256];
        byte_table(b, order);
        char sym[16];
        for (int i = 0; i < 256 && rc == MML_OK; i++) {
            rc = map_put(&b->encoder, b->byte_sym[order[i]], i);
            snprintf(sym, sizeof sym, "%s</w>", b->byte_sym[order[i]]);
            if (rc == MML_OK) rc = map_put(&b->encoder, sym, 256 + i);
        }
    }
    if (rc == MML_OK) rc = load_merges(b, text, path);
    mml_free(text);
    if (rc != MML_OK) {
        mml_bpe_free(b);
        return rc;
    }
    *out = b;
    return MML_OK;
}

/* ---- encoding ---- */

typedef struct symbols {
    char **s;
    int n;
} symbols;

static int32_t pair_rank(const mml_bpe *b, const char *x, const char *y)
{
    char key[1024];
    int n = snprintf(key, sizeof key, "%s %s", x, y);
    return n < (int)sizeof key ? map_get(&b->ranks, key, (size_t)n) : -1;
}

/* Merges the lowest-ranked adjacent pair everywhere, until none is known. */
static void bpe_word(const mml_bpe *b, symbols *w)
{
    for (;;) {
        int32_t best = -1;
        int at = -1;
        for (int i = 0; i + 1 < w->n; i++) {
            int32_t r = pair_rank(b, w->s[i], w->s[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                at = i;
            }
        }
        if (best < 0) return;
        const char *first = w->s[at], *second = w->s[at + 1];
        char *a = mml_strdup(first), *bb = mml_strdup(second);
        int k = 0;
        for (int i = 0; i < w->n;) {
            if (i + 1 < w->n && !strcmp(w->s[i], a) && !strcmp(w->s[i + 1], bb)) {
                size_t la = strlen(w->s[i]), lb = strlen(w->s[i + 1]);
                char *m = mml_malloc(la + lb + 1);
                memcpy(m, w->s[i], la);
                memcpy(m + la, w->s[i + 1], lb + 1);
                mml_free(w->s[i]);
                mml_free(w->s[i + 1]);
                w->s[k++] = m;
                i += 2;
            } else w->s[k++] = w->s[i++];
        }
        w->n = k;
        mml_free(a);
        mml_free(bb);
    }
}

typedef struct id_sink {
    int32_t *ids;
    int cap, n;
} id_sink;

static void emit(id_sink *o, int32_t id)
{
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

static void encode_token(const mml_bpe *b, const char *tok, size_t n, id_sink *o)
{
    symbols w = { mml_malloc((n + 1) * sizeof(char *)), 0 };
    for (size_t i = 0; i < n; i++) {
        const char *sym = b->byte_sym[(unsigned char)tok[i]];
        char buf[16];
        snprintf(buf, sizeof buf, "%s%s", sym, i + 1 == n ? "</w>" : "");
        w.s[w.n++] = mml_strdup(buf);
    }
    bpe_word(b, &w);
    for (int i = 0; i < w.n; i++) {
        emit(o, map_get(&b->encoder, w.s[i], strlen(w.s[i])));
        mml_free(w.s[i]);
    }
    mml_free(w.s);
}

static int cls_of(utf8proc_int32_t cp)
{
    if (cp == ' ' || (cp >= '\t' && cp <= '\r') || (cp >= 0x1c && cp <= 0x1f) || cp == 0x85) return 'S';
    utf8proc_category_t c = utf8proc_category(cp);
    if (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) return 'L';
    if (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) return 'N';
    if (c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP) return 'S';
    return 'P';
}

/* Lower-cased text with whitespace runs collapsed to one space and trimmed. */
static char *clean(const char *text)
{
    size_t len = strlen(text), k = 0;
    char *out = mml_malloc(4 * len + 1);
    if (!out) return NULL;
    bool space = false;
    for (size_t pos = 0; pos < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)text + pos, (utf8proc_ssize_t)(len - pos), &cp);
        pos += (size_t)n;
        if (cls_of(cp) == 'S') {
            space = k > 0;
            continue;
        }
        if (space) out[k++] = ' ';
        space = false;
        k += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)out + k);
    }
    out[k] = '\0';
    return out;
}

static size_t next_cp(const char *s, size_t pos, size_t len, utf8proc_int32_t *cp)
{
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(len - pos), cp);
    return n > 0 ? (size_t)n : 1;
}

/* CLIP's pattern: special tokens | 's 't 're 've 'm 'll 'd | \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+ */
static size_t match_at(const char *s, size_t pos, size_t len, int32_t *special)
{
    static const char *const contractions[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
    *special = -1;
    if (!strncmp(s + pos, "<|startoftext|>", 15)) return *special = MML_CLIP_SOT, 15;
    if (!strncmp(s + pos, "<|endoftext|>", 13)) return *special = MML_CLIP_EOT, 13;
    for (int i = 0; i < 7; i++)
        if (!strncmp(s + pos, contractions[i], strlen(contractions[i]))) return strlen(contractions[i]);
    utf8proc_int32_t cp;
    size_t n = next_cp(s, pos, len, &cp), end = pos + n;
    int c = cls_of(cp);
    if (c == 'N' || c == 'S') return c == 'N' ? n : 0;
    while (end < len) {
        size_t m = next_cp(s, end, len, &cp);
        if (cls_of(cp) != c) break;
        end += m;
    }
    return end - pos;
}

int mml_bpe_encode_clip(const mml_bpe *b, const char *text, int32_t *ids, int cap, int context)
{
    if (mml_text_validate(text, strlen(text), "text") != MML_OK) return -1;
    char *t = clean(text);
    if (!t) return -1;
    id_sink o = { ids, cap, 0 };
    emit(&o, MML_CLIP_SOT);
    size_t len = strlen(t);
    for (size_t pos = 0; pos < len;) {
        int32_t special;
        size_t n = match_at(t, pos, len, &special);
        if (n == 0) {
            pos++; /* the space between tokens */
            continue;
        }
        if (special >= 0) emit(&o, special);
        else encode_token(b, t + pos, n, &o);
        pos += n;
    }
    emit(&o, MML_CLIP_EOT);
    mml_free(t);
    if (context > 0) {
        if (o.n > context) {
            o.n = context;
            if (context <= cap) ids[context - 1] = MML_CLIP_EOT;
        }
        while (o.n < context) emit(&o, 0);
    }
    return o.n;
}
