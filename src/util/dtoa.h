/* The shortest decimal digits that read back as a float or double: Debian's
 * libdouble-conversion (C++) behind a C call, so that answers of hundreds of
 * thousands of numbers (features of long texts) print in milliseconds. */
#ifndef BS_UTIL_DTOA_H
#define BS_UTIL_DTOA_H

/* Digits of |v| (finite), as few as read back to v as a float (single) or a
 * double, the nearest to v among those: v = 0.DIGITS x 10^point. Writes n
 * digits (1..17, no NUL) to digits and returns n; *negative is 1 for a
 * negative v or -0. */
int bs_dtoa_shortest(double v, int single, char digits[18], int *point, int *negative);

#endif
