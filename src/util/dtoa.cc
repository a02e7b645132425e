/* bs_dtoa_shortest: libdouble-conversion's shortest digits (Grisu3 with a
 * bignum fallback, exact for every input). Built without exceptions or RTTI,
 * so the C library needs no C++ runtime of its own. */
#include <double-conversion/double-to-string.h>

extern "C" {
#include "util/dtoa.h"
}

using double_conversion::DoubleToStringConverter;

extern "C" int bs_dtoa_shortest(double v, int single, char digits[18], int *point, int *negative)
{
    char buf[DoubleToStringConverter::kBase10MaximalLength + 1];
    bool sign = false;
    int len = 0;
    DoubleToStringConverter::DoubleToAscii(
        v, single ? DoubleToStringConverter::SHORTEST_SINGLE : DoubleToStringConverter::SHORTEST,
        0, buf, sizeof buf, &sign, &len, point);
    for (int i = 0; i < len; i++) digits[i] = buf[i];
    *negative = sign;
    return len;
}
