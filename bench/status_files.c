/*
 * status_files: write one signed status file per machine, as their agents
 * would, into a staging directory, then move them all into a CAP's status
 * inbox at once (bench/completion.sh).
 *
 *   status_files STAGING INBOX JOB_ID MESSAGE_ID < machines
 *
 * Each input line is "<SMS ID> <machine key in hex>".  Every file is the
 * agent's format (src/formats, the same code), signed with the machine's
 * key, for the job, client time now, sequence 1.  Writing and signing
 * happen before the clock starts: the files then land in the inbox by
 * rename(2), and the program prints the time the last one landed (Unix
 * seconds with nanoseconds) on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sms_formats.h"

int
main(int argc, char **argv)
{
	char		line[512];
	char		err[256];
	char		name[64];
	char	  **names = NULL;
	size_t		n = 0;
	size_t		cap = 0;
	struct timespec ts;

	if (argc != 5)
	{
		fprintf(stderr, "usage: status_files STAGING INBOX JOB_ID MESSAGE_ID < machines\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin))
	{
		char		id[16];
		char		hex[256];
		uint8_t		key[SMS_STATUS_KEY_LEN];
		SmsStatusFile m = {0};
		char	   *buf;
		size_t		len;

		if (sscanf(line, "%15s %255s", id, hex) != 2)
			continue;
		if (!sms_status_key_from_hex(hex, strlen(hex), key, err, sizeof(err)))
		{
			fprintf(stderr, "%s: %s\n", id, err);
			return 1;
		}
		m.machine = id;
		m.site = "CEN";
		m.sequence = 1;
		m.at = (int64_t) time(NULL);
		m.message_id = atoi(argv[4]);
		m.severity = SMS_STATUS_INFO;
		m.component = "Client Agent";
		m.job_id = argv[3];
		m.text = "Program \"Run\" of package CEN00001 succeeded (exit code 0).";
		m.key = key;
		if (!sms_status_to_text(&m, &buf, &len, err, sizeof(err)) ||
			!sms_fmt_file_name(SMS_FILE_STATUS, id, 1, name, sizeof(name), err, sizeof(err)) ||
			!sms_fmt_write_file(argv[1], name, buf, len, err, sizeof(err)))
		{
			fprintf(stderr, "%s: %s\n", id, err);
			return 1;
		}
		free(buf);
		if (n == cap)
		{
			cap = cap ? cap * 2 : 1024;
			names = realloc(names, cap * sizeof(char *));
		}
		names[n++] = strdup(name);
	}
	for (size_t i = 0; i < n; i++)
	{
		char		from[1024];
		char		to[1024];

		snprintf(from, sizeof(from), "%s/%s", argv[1], names[i]);
		snprintf(to, sizeof(to), "%s/%s", argv[2], names[i]);
		if (rename(from, to) != 0)
		{
			perror(to);
			return 1;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	printf("%lld.%09ld\n", (long long) ts.tv_sec, ts.tv_nsec);
	return 0;
}
