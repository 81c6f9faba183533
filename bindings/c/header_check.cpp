// Compiled with -Wall -Wextra -Werror -pedantic by the test command: the generated
// header must be clean C++17.
#include "breakwater.h"

int header_check_cpp();
int header_check_cpp() {
    return static_cast<int>(BW_ABI_VERSION) + BW_VERSION_MAJOR;
}
