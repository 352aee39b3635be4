/*
 * job_check.c - the memory and time of a job's check and cut (job_check,
 * job_create.h) over a large input, alone, in one process: N of the
 * shortest valid requests with distinct ids (about 95 bytes each: 1,000,000
 * make about 95 MB) written to a file, then checked as a whole (custom_ids
 * unique across it, through the idsort's scratch file) and cut into parts.
 * Prints the lines, the bytes, the parts, the seconds and the peak RSS
 * (VmHWM) before and after the check; exits 1 when the peak passes
 * --max-mib or the outcome is not the one expected.
 *
 *     build/bench_job_check [--lines N] [--dir DIR] [--dup] [--max-mib M]
 *                           [--input FILE]
 *
 * --dup makes the last line repeat the first line's custom_id: the check
 * must refuse the input, naming both lines. --input checks FILE instead (a
 * valid input: bench/job_create.py's, to time the check alone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job_create.h"
#include "peak_rss.h"
#include "util.h"

/* Write n requests to fd (the last one repeating the first id with dup);
 * the bytes written, or 0. */
static uint64_t generate(int fd, long n, int dup)
{
	static char buf[1 << 16];
	size_t len = 0;
	uint64_t total = 0;

	for (long i = 1; i <= n; i++) {
		int k = snprintf(buf + len, sizeof(buf) - len,
				 "{\"custom_id\":\"request-%ld\",\"method\":"
				 "\"POST\",\"url\":\"/v1/chat/completions\","
				 "\"body\":{\"model\":\"m\"}}\n",
				 dup && i == n ? 1 : i);

		len += (size_t)k;
		if (sizeof(buf) - len < 256 || i == n) {
			if (write(fd, buf, len) != (ssize_t)len)
				return 0;
			total += len;
			len = 0;
		}
	}
	return total;
}

int main(int argc, char **argv)
{
	long lines = 1000000, max_mib = 0;
	const char *dir = "/tmp", *given = NULL;
	char cache[4096], input[4200];
	struct job_outcome out;
	struct job_create jc = {.completion_window = "24h"};
	int dup = 0, fd, r, ok;
	long before, after;
	uint64_t size;
	double t0, secs;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc)
			lines = atol(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--max-mib") == 0 && i + 1 < argc)
			max_mib = atol(argv[++i]);
		else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
			given = argv[++i];
		else if (strcmp(argv[i], "--dup") == 0)
			dup = 1;
		else {
			fprintf(stderr,
				"usage: %s [--lines N] [--dir DIR] [--dup] "
				"[--max-mib M] [--input FILE]\n",
				argv[0]);
			return 2;
		}
	}
	snprintf(cache, sizeof(cache), "%s/kimifs-bench-job-XXXXXX", dir);
	if (!mkdtemp(cache)) {
		perror(cache);
		return 2;
	}
	snprintf(input, sizeof(input), "%s/input.jsonl", cache);
	fd = given ? open(given, O_RDONLY)
		   : open(input, O_RDWR | O_CREAT | O_EXCL, 0600);
	jc.cache_fd = open(cache, O_RDONLY | O_DIRECTORY);
	if (!given)
		unlink(input);
	if (fd < 0 || jc.cache_fd < 0 ||
	    (size = given ? (uint64_t)lseek(fd, 0, SEEK_END)
			  : generate(fd, lines, dup)) == 0) {
		perror("input");
		return 2;
	}
	before = peak_kib();
	t0 = util_now();
	r = job_check(&jc, "bench", fd, size, &out);
	secs = util_now() - t0;
	after = peak_kib();
	if (given)
		lines = -1; /* not counted */
	printf("lines %ld  bytes %llu  parts %zu  check+cut %.2f s  "
	       "peak RSS %.1f MiB before, %.1f MiB after\n",
	       lines, (unsigned long long)size, out.nparts, secs,
	       before / 1024.0, after / 1024.0);
	ok = dup ? r == -EINVAL && out.why && strstr(out.why, "repeats line 1")
		 : r == 0;
	if (!ok)
		printf("unexpected: %s (%s)\n", strerror(-r),
		       out.why ? out.why : "");
	if (max_mib && after > max_mib * 1024) {
		printf("over the bound of %ld MiB\n", max_mib);
		ok = 0;
	}
	job_outcome_free(&out);
	close(fd);
	close(jc.cache_fd);
	if (rmdir(cache) < 0) { /* the scratch file left nothing */
		perror(cache);
		ok = 0;
	}
	return ok ? 0 : 1;
}
