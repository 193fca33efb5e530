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
#include "modal/text_internal.h"

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
    strmap encoder; /* token -> id (a later id wins for repeated strings, as CLIP's dict) */
    strmap ranks;   /* "first second" -> merge rank */
    char **tokens;  /* id -> token */
    int32_t n_merges, size;
    char byte_sym[256][4]; /* byte -> its printable code point, UTF-8 */
    int16_t cp_byte[512];  /* printable code point -> byte */
};

void mml_bpe_free(mml_bpe *b)
{
    if (!b) return;
    map_free(&b->encoder);
    map_free(&b->ranks);
    for (int32_t i = 0; b->tokens && i < b->size; i++) mml_free(b->tokens[i]);
    mml_free(b->tokens);
    mml_free(b);
}

int32_t mml_bpe_vocab_size(const mml_bpe *b) { return b->size; }
int32_t mml_bpe_merges(const mml_bpe *b) { return b->n_merges; }
int32_t mml_bpe_sot(const mml_bpe *b) { return b->size - 2; }
int32_t mml_bpe_eot(const mml_bpe *b) { return b->size - 1; }

/* bytes_to_unicode(): printable Latin-1 bytes map to themselves, the others
 * to 256, 257, ... in byte order; the vocabulary lists them in that order. */
void clip_byte_table(char sym[256][4], int order[256])
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
        utf8proc_encode_char(cp, (utf8proc_uint8_t *)sym[c]);
        sym[c][cp < 0x80 ? 1 : 2] = '\0';
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

static mml_status add_token(mml_bpe *b, const char *tok)
{
    if (!(b->tokens[b->size] = mml_strdup(tok))) return MML_ERR_NOMEM;
    return map_put(&b->encoder, tok, b->size++);
}

/* One merge line "first second" (NUL-terminated, modified). Both symbols must
 * exist already, or the merge could never apply. */
static mml_status add_merge(mml_bpe *b, char *line, const char *name, int lineno)
{
    char *sp = strchr(line, ' ');
    if (!sp || strchr(sp + 1, ' ') || sp == line || !sp[1])
        return mml_error(MML_ERR_FORMAT, "%s:%d: expected two symbols separated by one space", name, lineno);
    int32_t prev = map_get(&b->ranks, line, strlen(line));
    if (prev >= 0) return mml_error(MML_ERR_FORMAT, "%s:%d: repeats the merge of line %d", name, lineno, prev + 2);
    mml_status rc = map_put(&b->ranks, line, b->n_merges);
    *sp = '\0';
    for (int k = 0; k < 2 && rc == MML_OK; k++) {
        const char *sym = k ? sp + 1 : line;
        if (map_get(&b->encoder, sym, strlen(sym)) < 0)
            return mml_error(MML_ERR_FORMAT, "%s:%d: symbol '%s' is neither a byte nor made by an earlier merge",
                             name, lineno, sym);
    }
    size_t la = strlen(line), lb = strlen(sp + 1);
    char *tok = rc == MML_OK ? mml_malloc(la + lb + 1) : NULL;
    if (!tok) return MML_ERR_NOMEM;
    memcpy(tok, line, la);
    memcpy(tok + la, sp + 1, lb + 1);
    rc = add_token(b, tok);
    mml_free(tok);
    b->n_merges++;
    return rc;
}

static mml_status parse_merges(mml_bpe *b, char *text, size_t len, const char *name)
{
    size_t bad = text_bad_utf8_at(text, len);
    if (bad < len) {
        int line = 1;
        for (size_t i = 0; i < bad; i++) line += text[i] == '\n';
        return mml_error(MML_ERR_FORMAT, "%s:%d: %s", name, line, text[bad] ? "invalid UTF-8" : "NUL byte");
    }
    char *nl = strchr(text, '\n');
    if (nl) *nl = '\0';
    if (!strstr(text, "#version"))
        return mml_error(MML_ERR_FORMAT, "%s:1: expected a header line with #version", name);
    size_t lines = 0;
    for (char *p = nl; p; p = strchr(p + 1, '\n')) lines++;
    /* CLIP's vocabulary uses the first 48,894 of the merges its file lists. */
    size_t limit = strstr(text, "bpe_simple_vocab_16e6") ? 49152 - 256 - 2 : lines;
    if (limit > lines) limit = lines;
    mml_status rc = map_init(&b->encoder, 512 + limit + 2);
    if (rc == MML_OK) rc = map_init(&b->ranks, limit);
    b->tokens = rc == MML_OK ? mml_calloc(512 + limit + 2, sizeof *b->tokens) : NULL;
    if (!b->tokens) return MML_ERR_NOMEM;
    int order[256];
    clip_byte_table(b->byte_sym, order);
    for (int i = 0; i < 256; i++) {
        const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)b->byte_sym[i];
        b->cp_byte[u[0] < 0x80 ? u[0] : ((u[0] & 0x1f) << 6) | (u[1] & 0x3f)] = (int16_t)i;
    }
    char sym[16];
    for (int i = 0; i < 256 && rc == MML_OK; i++) rc = add_token(b, b->byte_sym[order[i]]);
    for (int i = 0; i < 256 && rc == MML_OK; i++) {
        snprintf(sym, sizeof sym, "%s</w>", b->byte_sym[order[i]]);
        rc = add_token(b, sym);
    }
    int lineno = 1;
    for (char *line = nl; line && rc == MML_OK && (size_t)b->n_merges < limit;) {
        char *start = line + 1;
        line = strchr(start, '\n');
        if (line) *line = '\0';
        lineno++;
        if (!line && !*start) break; /* the final newline */
        rc = add_merge(b, start, name, lineno);
    }
    if (rc == MML_OK) rc = add_token(b, "<|startoftext|>");
    if (rc == MML_OK) rc = add_token(b, "<|endoftext|>");
    return rc;
}

mml_status mml_bpe_parse(const char *text, size_t len, const char *name, mml_bpe **out)
{
    *out = NULL;
    mml_bpe *b = mml_calloc(1, sizeof *b);
    char *copy = b ? mml_malloc(len + 1) : NULL;
    if (!copy) {
        mml_free(b);
        return mml_error(MML_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    mml_status rc = parse_merges(b, copy, len, name);
    mml_free(copy);
    if (rc != MML_OK) {
        mml_bpe_free(b);
        return rc;
    }
    *out = b;
    return MML_OK;
}

mml_status mml_bpe_load(const char *path, mml_bpe **out)
{
    *out = NULL;
    size_t len;
    char *text = read_all(path, &len);
    if (!text) return mml_last_status();
    mml_status rc = mml_bpe_parse(text, len, path, out);
    mml_free(text);
    return rc;
}

mml_status mml_bpe_load_clip(const char *path, mml_bpe **out)
{
    mml_status rc = mml_bpe_load(path, out);
    if (rc == MML_OK && mml_bpe_eot(*out) != MML_CLIP_EOT) {
        rc = mml_error(MML_ERR_FORMAT, "%s: has %d merges, CLIP's vocabulary needs %d", path, mml_bpe_merges(*out),
                       49152 - 256 - 2);
        mml_bpe_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- encoding ---- */

typedef struct symbols {
    char **s;
    int n;
} symbols;

static int32_t pair_rank(const mml_bpe *b, const char *x, const char *y)
{
    char small[256];
    size_t lx = strlen(x), ly = strlen(y), n = lx + 1 + ly;
    char *key = n < sizeof small ? small : mml_malloc(n + 1);
    if (!key) return -1;
    memcpy(key, x, lx);
    key[lx] = ' ';
    memcpy(key + lx + 1, y, ly);
    int32_t r = map_get(&b->ranks, key, n);
    if (key != small) mml_free(key);
    return r;
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
char *clip_clean(const char *text)
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
size_t clip_pretoken(const char *s, size_t pos, size_t len, int32_t *special)
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

int mml_bpe_encode(const mml_bpe *b, const char *text, int flags, int32_t *ids, int cap)
{
    if (mml_text_validate(text, strlen(text), "text") != MML_OK) return -1;
    char *t = clip_clean(text);
    if (!t) return -1;
    id_sink o = { ids, cap, 0 };
    if (flags & MML_TEXT_BOS) emit(&o, mml_bpe_sot(b));
    size_t len = strlen(t);
    for (size_t pos = 0; pos < len;) {
        int32_t special;
        size_t n = clip_pretoken(t, pos, len, &special);
        if (n == 0) {
            pos++; /* the space between tokens */
            continue;
        }
        if (special >= 0) emit(&o, special == MML_CLIP_SOT ? mml_bpe_sot(b) : mml_bpe_eot(b));
        else encode_token(b, t + pos, n, &o);
        pos += n;
    }
    if (flags & MML_TEXT_EOS) emit(&o, mml_bpe_eot(b));
    mml_free(t);
    return o.n;
}

int mml_bpe_encode_clip(const mml_bpe *b, const char *text, int32_t *ids, int cap, int context)
{
    int n = mml_bpe_encode(b, text, MML_TEXT_BOS | MML_TEXT_EOS, ids, cap);
    if (n < 0 || context <= 0) return n;
    id_sink o = { ids, cap, n };
    if (o.n > context) {
        o.n = context;
        if (context <= cap) ids[context - 1] = mml_bpe_eot(b);
    }
    while (o.n < context) emit(&o, 0);
    return o.n;
}

char *mml_bpe_decode(const mml_bpe *b, const int32_t *ids, int n)
{
    size_t cap = 1, len = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= b->size) {
            mml_error(MML_ERR_ARG, "decode: id %d at position %d is outside the vocabulary of %d", ids[i], i, b->size);
            return NULL;
        }
        cap += strlen(b->tokens[ids[i]]);
    }
    char *out = mml_malloc(cap);
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        if (ids[i] >= mml_bpe_sot(b)) continue;
        const char *tok = b->tokens[ids[i]];
        for (size_t pos = 0, tl = strlen(tok); pos < tl;) {
            if (!strcmp(tok + pos, "</w>")) {
                out[len++] = ' ';
                break;
            }
            utf8proc_int32_t cp;
            pos += next_cp(tok, pos, tl, &cp);
            out[len++] = (char)b->cp_byte[cp];
        }
    }
    if (len && out[len - 1] == ' ') len--;
    out[len] = '\0';
    if (mml_text_validate(out, len, "decoded ids") != MML_OK) {
        mml_free(out);
        return NULL;
    }
    return out;
}
