/* SPDX-License-Identifier: MIT */
/*
 * fuzz_handover_state: a libFuzzer target for the hand-over record reader
 * (src/server/handover_state.c), the one parser that reads what another
 * process wrote.  Built with replay.c as an ordinary program that runs the
 * corpus in ctest (fuzz.handover_state.replay); clang -fsanitize=fuzzer
 * builds it as it is.
 *
 * Checked, with abort() on any mismatch: whatever the reader accepts,
 * written back from the records it returned, is the input byte for byte
 * (so no field is misread, and nothing is accepted that the writer would
 * not produce); every input pointer lies inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handover_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct tp_handover_conn *c = NULL;
	size_t n = 0, len;
	uint32_t gen = 0;
	char *out;

	if (tp_handover_state_read(buf, size, &gen, &c, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].input_len && (c[i].input < buf || c[i].input + c[i].input_len > buf + size))
			abort();
	len = tp_handover_state_size(c, n);
	out = malloc(len ? len : 1);
	if (!out || len != size || tp_handover_state_write(c, n, gen, out, len) != len ||
	    memcmp(out, data, size) != 0)
		abort();
	free(out);
	free(c);
	return 0;
}
