/* Internal: reading a whole file, with its size checked against a limit
 * before anything is allocated. */
#ifndef MML_CORE_FILE_H
#define MML_CORE_FILE_H

#include <stddef.h>

#include "mml/error.h"

/* *buf (mml_free) holds the bytes plus a terminating NUL. Errors name the path. */
mml_status mml_file_read(const char *path, size_t max_bytes, unsigned char **buf, size_t *len);

/* Creates the directories above path (not path itself), as `mkdir -p` would,
 * so that `--out results/x` works in a fresh checkout. */
mml_status mml_file_make_parents(const char *path);

/* rm -rf without a shell; a missing tree is not an error. */
mml_status mml_file_remove_tree(const char *dir);

/* A fresh, empty dir (leftovers of an interrupted run removed, parents
 * created) with the n subdirectories subs. */
mml_status mml_file_fresh_dir(const char *dir, const char *const *subs, int n);

/* The end of a build into the temporary dir tmp: on success renamed to dir,
 * on failure (rc) removed, keeping the message of what failed. */
mml_status mml_file_commit_dir(mml_status rc, const char *tmp, const char *dir);

#endif
