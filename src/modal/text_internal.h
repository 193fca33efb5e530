/* Internal to the text front-end: a string table (ids in insertion order,
 * O(1) lookup, a count per key), a corpus reader that checks each line, and
 * CLIP's cleaning and pre-tokenizer shared by the BPE encoder and trainer. */
#ifndef MML_TEXT_INTERNAL_H
#define MML_TEXT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mml/error.h"

typedef struct strtab {
    char **keys;     /* id -> key (NUL-terminated copy) */
    int64_t *counts; /* id -> count */
    int32_t *slots;  /* open addressing: id + 1, 0 when empty */
    int32_t n, cap;
    size_t nslots;   /* power of two, at least twice cap */
} strtab;

void strtab_free(strtab *t);
/* Id of key[0..len), or -1. */
int32_t strtab_find(const strtab *t, const char *key, size_t len);
/* Adds `count` to key's count, inserting it (with the next id) if new; *id may be NULL. */
mml_status strtab_add(strtab *t, const char *key, size_t len, int64_t count, int32_t *id);

/* Byte offset of the first invalid UTF-8 sequence or NUL in s[0..n), or n. */
size_t text_bad_utf8_at(const char *s, size_t n);

/* Calls fn on each line of a UTF-8 text file (without its line ending; the
 * buffer may be modified). Errors name path:line for invalid UTF-8 or NUL. */
typedef mml_status (*corpus_line_fn)(char *line, size_t len, const char *path, int64_t lineno, void *user);
mml_status corpus_for_each_line(const char *path, corpus_line_fn fn, void *user);

/* Writes data to path through a temp file and a rename. */
mml_status text_write_file(const char *path, const char *data, size_t len);

/* CLIP: printable symbol (UTF-8) for each byte, and the byte order of its vocabulary. */
void clip_byte_table(char sym[256][4], int order[256]);
/* Lower-cased text with whitespace runs collapsed to one space and trimmed (heap). */
char *clip_clean(const char *text);
/* Length of CLIP's pre-token at pos (0 for the space between tokens);
 * *special is MML_CLIP_SOT/EOT for the special token strings, else -1. */
size_t clip_pretoken(const char *s, size_t pos, size_t len, int32_t *special);

#endif
