/* UTF-8 (RFC 3629) checking shared by the error type and the validators. */
#ifndef SEGMENTD_CORE_UTF8_H
#define SEGMENTD_CORE_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when the bytes there are not
 * one (bad lead, missing continuation, overlong form, surrogate, above U+10FFFF).
 * s points into a NUL-terminated string, so a NUL ends a sequence early safely. */
size_t utf8_seq_len(const unsigned char *s);

#endif
