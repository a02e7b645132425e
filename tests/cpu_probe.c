/* Exits 0 when this CPU can run the kernel path named by argv[1]
 * (portable, avx2, avx512), 77 (ctest's "skipped") when it cannot: the
 * per-path reruns of the engine tests skip paths the machine lacks. */
#include "tensor/tensor.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    static const char *const names[] = {"portable", "avx2", "avx512"};
    for (int p = 0; argc == 2 && p < 3; p++)
        if (!strcmp(argv[1], names[p])) {
            if (bs_cpu_can((bs_cpu_path)p)) return 0;
            printf("this CPU cannot run the %s kernel path: skipped\n", argv[1]);
            return 77;
        }
    fprintf(stderr, "usage: cpu_probe portable|avx2|avx512\n");
    return 2;
}
