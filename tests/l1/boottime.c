/* boottime: run a VMM command, read its console stream, and report how long
 * after launch a marker line appeared. Optionally sample the VMM's memory
 * then: its resident set minus the resident part of guest RAM (the mapping
 * whose size is --ram-mib), i.e. what the VMM itself costs.
 *
 *   boottime [--ram-mib N] [--quiet] [--timeline] MARKER -- COMMAND [ARGS...]
 *
 * Prints "BOOTTIME-MS: T" and, with --ram-mib, "VMM-RSS-KB: R" and
 * "VMM-OVERHEAD-KB: O"; exits with the command's status. --timeline prints
 * each line of the stream as "TL MS| LINE" instead, MS being the
 * milliseconds since launch at which the line's first byte arrived. Timing reads the
 * stream (no polling of files), so it does not slow the guest it times. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --timeline: the line being assembled and when its first byte came. */
static char tl_line[1024];
static size_t tl_len;
static double tl_start = -1;

static void tl_flush(void)
{
	if (tl_start < 0)
		return;
	printf("TL %8.1f| %.*s\n", tl_start, (int)tl_len, tl_line);
	fflush(stdout);
	tl_len = 0;
	tl_start = -1;
}

static void tl_feed(const char *b, size_t n, double t)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] == '\r')
			continue;
		if (b[i] == '\n') {
			if (tl_start < 0)
				tl_start = t;
			tl_flush();
			continue;
		}
		if (tl_start < 0)
			tl_start = t;
		if (tl_len < sizeof(tl_line))
			tl_line[tl_len++] = b[i];
	}
}

/* Sum Rss over all mappings, and the Rss of the mapping sized ram_kb. */
static void sample_memory(pid_t pid, unsigned long ram_kb)
{
	char path[64], line[256];
	unsigned long total = 0, ram = 0, size = 0, rss;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Size: %lu kB", &size) == 1)
			continue;
		if (sscanf(line, "Rss: %lu kB", &rss) == 1) {
			total += rss;
			if (size == ram_kb && rss > ram)
				ram = rss;
		}
	}
	fclose(f);
	printf("VMM-RSS-KB: %lu\nGUEST-RAM-TOUCHED-KB: %lu\nVMM-OVERHEAD-KB: %lu\n", total, ram,
	       total - ram);
}

int main(int argc, char **argv)
{
	unsigned long ram_mib = 0;
	int quiet = 0, timeline = 0, i = 1, p[2], status;
	const char *marker;
	char buf[4096], tail[512] = "";
	double t0, found = -1;
	pid_t pid;

	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2]; i++) {
		if (!strcmp(argv[i], "--ram-mib") && i + 1 < argc)
			ram_mib = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--quiet"))
			quiet = 1;
		else if (!strcmp(argv[i], "--timeline"))
			timeline = 1;
		else
			break;
	}
	if (i + 2 >= argc || strcmp(argv[i + 1], "--")) {
		fprintf(stderr, "usage: boottime [--ram-mib N] [--quiet] [--timeline] MARKER -- COMMAND...\n");
		return 2;
	}
	marker = argv[i];
	if (pipe(p) < 0)
		return 1;
	t0 = now_ms();
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execvp(argv[i + 2], &argv[i + 2]);
		perror("boottime: exec");
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf) - 1);

		if (n <= 0)
			break;
		buf[n] = 0;
		if (timeline)
			tl_feed(buf, n, now_ms() - t0);
		else if (!quiet)
			fwrite(buf, 1, n, stdout);
		if (found < 0) {
			/* The marker may straddle two reads: search tail + buf. */
			char joined[sizeof(tail) + sizeof(buf)];

			snprintf(joined, sizeof(joined), "%s%s", tail, buf);
			if (strstr(joined, marker)) {
				found = now_ms() - t0;
				if (ram_mib)
					sample_memory(pid, ram_mib * 1024);
			}
			size_t jl = strlen(joined), keep = strlen(marker);

			snprintf(tail, sizeof(tail), "%s", joined + (jl > keep ? jl - keep : 0));
		}
	}
	waitpid(pid, &status, 0);
	tl_flush();
	fflush(stdout);
	if (found >= 0)
		printf("BOOTTIME-MS: %.0f\n", found);
	else
		printf("BOOTTIME-MS: none (marker not seen)\n");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
