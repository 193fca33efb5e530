#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/cpu.h"
#include "mml/threads.h"

int cmd_version(int argc, char **argv)
{
    const char *usage = "mml version [--threads N]";
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nPrints the version, the SIMD level chosen at run time (MML_SIMD "
               "overrides), the thread count (--threads or MML_THREADS) and build options.\n",
               usage);
        return CLI_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) mml_threads_set(atoi(argv[++i]));
        else return cli_usage(usage, "unexpected argument");
    }
    printf("mml %s\n", MML_VERSION);
    printf("simd: %s\n", mml_simd_name(mml_cpu_simd()));
    printf("threads: %d\n", mml_threads_get());
    printf("build: %s\n", mml_build_info());
    return CLI_OK;
}
