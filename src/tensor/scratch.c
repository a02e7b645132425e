/* Per-thread scratch memory for the kernels: one 64-byte aligned block per
 * (thread, slot) that only grows, freed when the thread exits, so that after
 * warm-up a forward pass allocates nothing. */
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdlib.h>

/* The block's size sits in a 64-byte header in front of the data. */
#define HEADER 64

static pthread_key_t keys[BS_SCRATCH_SLOTS];
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void keys_init(void)
{
    for (int i = 0; i < BS_SCRATCH_SLOTS; i++) pthread_key_create(&keys[i], free);
}

void *bs_thread_scratch(bs_scratch_slot slot, size_t bytes)
{
    pthread_once(&keys_once, keys_init);
    char *b = pthread_getspecific(keys[slot]);
    if (b && *(size_t *)b >= bytes) return b + HEADER;
    free(b);
    pthread_setspecific(keys[slot], NULL);
    if (posix_memalign((void **)&b, 64, HEADER + bytes) != 0) return NULL;
    *(size_t *)b = bytes;
    if (pthread_setspecific(keys[slot], b) != 0) {
        free(b);
        return NULL;
    }
    return b + HEADER;
}
