/*-------------------------------------------------------------------------
 *
 * pcm_file.c
 *	  The PCM instruction file: a header naming the machine, and one
 *	  section "[job <JOBID>]" per job, written sorted by job ID.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "pcm_file.h"

#include <string.h>

#include "fields.h"

static const SmsField pcm_header[] = {
	SMS_STRING(SmsPcmFile, machine, SMS_REQUIRED, sms_check_sms_id),
	SMS_STRING(SmsPcmFile, site, SMS_REQUIRED, sms_check_site),
	SMS_UTC(SmsPcmFile, generated, SMS_REQUIRED),
};

static const SmsField pcm_job[] = {
	SMS_STRING(SmsPcmJob, package_id, SMS_REQUIRED, sms_check_sms_id),
	SMS_STRING(SmsPcmJob, package_name, SMS_REQUIRED, sms_check_name),
	SMS_INT(SmsPcmJob, package_version, SMS_REQUIRED, 1, INT32_MAX),
	SMS_STRING(SmsPcmJob, program, SMS_REQUIRED, sms_check_name),
	SMS_STRING(SmsPcmJob, command_line, SMS_REQUIRED, sms_check_command_line),
	SMS_LIST(SmsPcmJob, platforms, SMS_REQUIRED, ',', 0, sms_check_platform),
	SMS_UTC(SmsPcmJob, offer_after, SMS_REQUIRED),
	SMS_UTC(SmsPcmJob, mandatory_at, SMS_OPTIONAL),
	SMS_UTC(SmsPcmJob, expires_at, SMS_OPTIONAL),
	SMS_INT(SmsPcmJob, max_run_minutes, SMS_OPTIONAL, 1, SMS_FMT_MAX_RUN_MINUTES),
	SMS_RUN_WITH(SmsPcmJob, user_rights),
	SMS_LIST(SmsPcmJob, locations, SMS_REQUIRED, ';', 1, sms_check_path),
	SMS_STRING(SmsPcmJob, package_sha256, SMS_REQUIRED, sms_check_sha256),
};

static int
cmp_pcm_job(const void *a, const void *b)
{
	return strcmp((*(const SmsPcmJob *const *) a)->job_id,
				  (*(const SmsPcmJob *const *) b)->job_id);
}

/* Two jobs with one ID are two sections of one name: the serializer refuses them. */
static const SmsSectionSpec pcm_sections[] = {
	{
		.type = "job",
		.fields = pcm_job,
		.nfields = SMS_NFIELDS(pcm_job),
		.elem_size = sizeof(SmsPcmJob),
		.array_offset = offsetof(SmsPcmFile, jobs),
		.count_offset = offsetof(SmsPcmFile, njobs),
		.arg_what = "job ID",
		.arg_offset = offsetof(SmsPcmJob, job_id),
		.arg_check = sms_check_sms_id,
		.cmp = cmp_pcm_job,
	},
};

static const SmsFormatSpec pcm_format = {
	.format = SMS_FMT_PCM,
	.size = sizeof(SmsPcmFile),
	.header = pcm_header,
	.nheader = SMS_NFIELDS(pcm_header),
	.sections = pcm_sections,
	.nsections = SMS_NFIELDS(pcm_sections),
};

bool
sms_pcm_to_text(const SmsPcmFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	size_t		i;

	*out = NULL;
	*len = 0;
	/* the IDs are sorted and name sections: they must be valid first */
	for (i = 0; i < f->njobs; i++)
		if (!sms_fmt_valid_sms_id(f->jobs[i].job_id))
		{
			char		q[SMS_FMT_QUOTE_BUFLEN];

			return sms_fmt_error(err, errlen, "job %zu: invalid job ID \"%s\"", i + 1,
								 sms_fmt_quote(f->jobs[i].job_id, q, sizeof(q)));
		}
	return sms_format_to_text(&pcm_format, f, out, len, err, errlen);
}

bool
sms_pcm_parse(const char *buf, size_t len, SmsPcmFile *out, char *err, size_t errlen)
{
	return sms_format_parse(&pcm_format, buf, len, out, err, errlen);
}

void
sms_pcm_free(SmsPcmFile *f)
{
	sms_format_free(&pcm_format, f);
}
