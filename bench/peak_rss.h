/*
 * peak_rss.h - the peak RSS of the benchmark's own process, for the C
 * benchmarks (bench/job_check.c, bench/events_memory.c,
 * bench/inodes_memory.c).
 */
#ifndef KIMIFS_BENCH_PEAK_RSS_H
#define KIMIFS_BENCH_PEAK_RSS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* This process's peak RSS in KiB: VmHWM, not getrusage's ru_maxrss,
 * which keeps the peak of the image before exec (a python parent's, under
 * meson test). -1 when /proc cannot tell. */
static inline long peak_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

#endif
