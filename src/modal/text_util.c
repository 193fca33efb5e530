/* String table and corpus reading for the vocabulary and the BPE trainer. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <utf8proc.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/text.h"
#include "modal/text_internal.h"

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

void strtab_free(strtab *t)
{
    for (int32_t i = 0; i < t->n; i++) mml_free(t->keys[i]);
    mml_free(t->keys);
    mml_free(t->counts);
    mml_free(t->slots);
    memset(t, 0, sizeof *t);
}

static size_t slot_of(const strtab *t, const char *key, size_t len)
{
    size_t i = hash_bytes(key, len) & (t->nslots - 1);
    for (int32_t s; (s = t->slots[i]) != 0; i = (i + 1) & (t->nslots - 1)) {
        const char *k = t->keys[s - 1];
        if (!strncmp(k, key, len) && k[len] == '\0') break; /* strncmp stops at a shorter k */
    }
    return i;
}

int32_t strtab_find(const strtab *t, const char *key, size_t len)
{
    if (!t->nslots) return -1;
    return t->slots[slot_of(t, key, len)] - 1;
}

static mml_status grow(strtab *t)
{
    int32_t cap = t->cap ? 2 * t->cap : 64;
    char **keys = mml_realloc(t->keys, (size_t)cap * sizeof *keys);
    if (keys) t->keys = keys;
    int64_t *counts = keys ? mml_realloc(t->counts, (size_t)cap * sizeof *counts) : NULL;
    if (counts) t->counts = counts;
    size_t nslots = 4 * (size_t)cap;
    int32_t *slots = counts ? mml_calloc(nslots, sizeof *slots) : NULL;
    if (!slots) return mml_error(MML_ERR_NOMEM, "string table: out of memory at %d entries", (int)cap);
    mml_free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    t->cap = cap;
    for (int32_t i = 0; i < t->n; i++) t->slots[slot_of(t, t->keys[i], strlen(t->keys[i]))] = i + 1;
    return MML_OK;
}

mml_status strtab_add(strtab *t, const char *key, size_t len, int64_t count, int32_t *id)
{
    int32_t found = strtab_find(t, key, len);
    if (found < 0) {
        if (t->n == t->cap && grow(t) != MML_OK) return mml_last_status();
        char *copy = mml_malloc(len + 1);
        if (!copy) return mml_error(MML_ERR_NOMEM, "string table: out of memory");
        memcpy(copy, key, len);
        copy[len] = '\0';
        found = t->n++;
        t->keys[found] = copy;
        t->counts[found] = 0;
        t->slots[slot_of(t, key, len)] = found + 1;
    }
    t->counts[found] += count;
    if (id) *id = found;
    return MML_OK;
}

size_t text_bad_utf8_at(const char *s, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + pos, (utf8proc_ssize_t)(n - pos), &cp);
        if (k < 1 || cp == 0) return pos;
        pos += (size_t)k;
    }
    return n;
}

mml_status corpus_for_each_line(const char *path, corpus_line_fn fn, void *user)
{
    unsigned char *buf;
    size_t len;
    mml_status rc = mml_file_read(path, (size_t)1 << 30, &buf, &len);
    if (rc != MML_OK) return rc;
    char *s = (char *)buf;
    int64_t lineno = 1;
    for (size_t pos = 0; pos < len && rc == MML_OK; lineno++) {
        char *end = memchr(s + pos, '\n', len - pos);
        size_t next = end ? (size_t)(end - s) + 1 : len, n = (end ? (size_t)(end - s) : len) - pos;
        if (n && s[pos + n - 1] == '\r') n--;
        size_t bad = text_bad_utf8_at(s + pos, n);
        if (bad < n)
            rc = mml_error(MML_ERR_FORMAT, "%s:%lld: %s at byte %zu of the line", path, (long long)lineno,
                           s[pos + bad] ? "invalid UTF-8" : "NUL", bad);
        else {
            s[pos + n] = '\0';
            rc = fn(s + pos, n, path, lineno, user);
        }
        pos = next;
    }
    mml_free(buf);
    return rc;
}

mml_status text_write_file(const char *path, const char *data, size_t len)
{
    size_t n = strlen(path) + 5;
    char *tmp = mml_malloc(n);
    if (!tmp) return mml_error(MML_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    mml_status rc = MML_OK;
    if (!f) rc = mml_error(MML_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    else {
        bool ok = fwrite(data, 1, len, f) == len;
        ok = (fclose(f) == 0) && ok;
        if (!ok || rename(tmp, path) != 0) {
            rc = mml_error(MML_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
            remove(tmp);
        }
    }
    mml_free(tmp);
    return rc;
}
