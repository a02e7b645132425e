/* Exits 0 when this CPU can run the kernel path named by argv[1]
 * (portable, avx2, avxvnni, avx512), 77 (ctest's "skipped") when it cannot:
 * the per-path reruns of the engine tests skip paths the machine lacks. */
#include "tensor/tensor.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    int can = argc == 2 ? bs_cpu_can_name(argv[1]) : -1;
    if (can == 1) return 0;
    if (can == 0) {
        printf("this CPU cannot run the %s kernel path: skipped\n", argv[1]);
        return 77;
    }
    fprintf(stderr, "usage: cpu_probe portable|avx2|avxvnni|avx512\n");
    return 2;
}
