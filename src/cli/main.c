/* bertstudio: the command line. Dispatches to one file per subcommand. */
#include "bertstudio/common.h"
#include <stdio.h>
int main(int argc, char **argv)
{
    printf("bertstudio %s\n", bs_version());
    return 0;
}
