/* Exits 0 when this CPU can run the kernel path named by argv[1]
 * (portable, avx2, avxvnni, avx512), 77 (ctest's "skipped") when it cannot:
 * the per-path reruns of the engine tests skip paths the machine lacks.
 * With --check: the path this process runs (BS_CPU honoured) as a model load
 * logs it, "kernels: <path> (<why>)", or the refusal of BS_CPU (exit 1). */
#include "tensor/tensor.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--check")) {
        const char *why = NULL;
        bs_err err = {0};
        if (bs_cpu_check(&why, &err)) {
            printf("%s\n", err.msg);
            return 1;
        }
        printf("kernels: %s (%s)\n", bs_cpu_in_use_name(), why);
        return 0;
    }
    int can = argc == 2 ? bs_cpu_can_name(argv[1]) : -1;
    if (can == 1) return 0;
    if (can == 0) {
        printf("this CPU cannot run the %s kernel path: skipped\n", argv[1]);
        return 77;
    }
    fprintf(stderr, "usage: cpu_probe portable|avx2|avxvnni|avx512|--check\n");
    return 2;
}
