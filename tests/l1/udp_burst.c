/* udp_burst: send COUNT small UDP datagrams to ADDR:PORT as fast as the
 * socket takes them, for the net scenario: with the VMM stopped meanwhile,
 * they wait in its tap together, more of them than the guest's receive
 * ring holds.
 *
 *   udp_burst ADDR PORT COUNT
 * Exits 0 when every datagram was sent, 1 otherwise (saying why). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	char payload[64];
	int fd, n;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 ||
	    (n = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: udp_burst ADDR PORT COUNT\n");
		return 1;
	}
	to.sin_port = htons(atoi(argv[2]));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("udp_burst: socket");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		snprintf(payload, sizeof(payload), "udp_burst %d of %d", i + 1, n);
		if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
			fprintf(stderr, "udp_burst: datagram %d: %s\n", i + 1, strerror(errno));
			return 1;
		}
	}
	close(fd);
	return 0;
}
