/* Compiled with -Wall -Wextra -Werror -pedantic by the test command: the generated
 * header must be clean C11. */
#include "breakwater.h"

int header_check_c(void);
int header_check_c(void) {
    return (int)BW_ABI_VERSION + BW_VERSION_MAJOR;
}
