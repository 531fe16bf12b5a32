/*-------------------------------------------------------------------------
 *
 * test_formats.c
 *	  Tests of the instruction-file formats (src/formats), printing TAP.
 *
 *	  test_formats <golden dir> <scratch dir>
 *	  test_formats --write-golden <dir>
 *
 * Terms:
 *	golden file		<golden dir>/<format>.txt: the exact bytes that the
 *					fully populated example of a format must serialize to.
 *					They pin the formats: a change that alters them is a
 *					change of the on-disk format that readers in the field
 *					will see, so it needs a version decision, not just a
 *					regenerated file.  --write-golden writes the current
 *					output, to be reviewed line by line before it is kept.
 *	bad file		<golden dir>/bad/<name>.txt: inputs a reader must refuse,
 *					each with the message it must give (see bad_files[]).
 *	signed file		<golden dir>/signed-<format>.txt: a golden file signed
 *					with the fixed test key <golden dir>/keys/site-key.pem
 *					(Ed25519 signatures are deterministic, so the bytes are
 *					fixed too).  keys/other-key.pem plays another site.
 *	scratch dir		where the file tests write; nothing else is written.
 *
 * The exit status is nonzero if any test failed.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "sms_formats.h"
#include "sms_signature.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int	ntests;
static int	nfailed;
static const char *golden_dir;
static const char *scratch_dir;
static bool write_golden;

/* ----------------------------------------------------------------
 * TAP
 * ----------------------------------------------------------------
 */
static bool ok(bool cond, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static void diag(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static bool
ok(bool cond, const char *fmt,...)
{
	va_list		ap;

	ntests++;
	if (!cond)
		nfailed++;
	printf("%sok %d - ", cond ? "" : "not ", ntests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static void
diag(const char *fmt,...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ok(false ... err contains want) with the message shown when it does not */
static bool
refused(bool result, const char *err, const char *want, const char *what)
{
	bool		good = !result && strstr(err, want) != NULL;

	if (!good)
		diag("expected a refusal mentioning \"%s\"; got %s: %s", want,
			 result ? "success" : "refusal", result ? "" : err);
	return ok(good, "%s", what);
}

/* ----------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------
 */
static int64_t
T(const char *s)
{
	int64_t		secs = 0;
	bool		utc = s[strlen(s) - 1] == 'Z';

	if (!sms_fmt_parse_time(s, utc, &secs))
	{
		diag("bad time literal in the test: %s", s);
		exit(2);
	}
	return secs;
}

static SmsWhen
W(const char *s)
{
	SmsWhen		w;

	w.utc = s[strlen(s) - 1] == 'Z';
	w.secs = T(s);
	return w;
}

static char *
slurp(const char *dir, const char *name, size_t *len)
{
	char		path[4096];
	FILE	   *f;
	char	   *buf;
	long		size;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
	{
		diag("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) size + 1);
	if (buf == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size)
	{
		diag("cannot read %s", path);
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[size] = '\0';
	*len = (size_t) size;
	return buf;
}

static void
spit(const char *dir, const char *name, const char *buf, size_t len)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		diag("cannot write %s: %s", path, strerror(errno));
}

/* Compare to the golden file, showing the first differing line. */
static bool
matches_golden(const char *name, const char *text, size_t len)
{
	size_t		glen = 0;
	char	   *g;
	bool		same;
	size_t		i,
				line = 1;

	if (write_golden)
	{
		spit(golden_dir, name, text, len);
		return true;
	}
	g = slurp(golden_dir, name, &glen);
	if (g == NULL)
		return false;
	same = glen == len && memcmp(g, text, len) == 0;
	if (!same)
	{
		char		actual[256];

		for (i = 0; i < len && i < glen && g[i] == text[i]; i++)
			if (g[i] == '\n')
				line++;
		snprintf(actual, sizeof(actual), "%s.actual", name);
		spit(scratch_dir, actual, text, len);
		diag("%s differs from the golden file at line %zu (actual output in %s/%s)",
			 name, line, scratch_dir, actual);
	}
	free(g);
	return same;
}

static bool
streq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
list_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t		i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (!streq(a[i], b[i]))
			return false;
	return true;
}

/* field comparison: note every mismatch, keep going */
#define SAME(cond) \
	do { \
		if (!(cond)) \
		{ \
			diag("mismatch: %s", #cond); \
			good = false; \
		} \
	} while (0)

static bool
has_temp_files(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	bool		found = false;

	if (d == NULL)
		return true;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp.") != NULL)
			found = true;
	closedir(d);
	return found;
}

/* ----------------------------------------------------------------
 * The fully populated examples (in the order the writers sort to)
 * ----------------------------------------------------------------
 */
static char *sha_a = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static char *sha_b = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

static char *pcm_plat1[] = {"WINNT_X86", "WIN_X64"};
static char *pcm_loc1[] = {"/srv/sms/dp1/SMS_PKGC/CEN00002", "/srv/sms/dp2/SMS_PKGD/CEN00002"};
static char *pcm_loc2[] = {"/srv/sms/dp1/SMS_PKGC/CEN0000A"};
static SmsPcmJob pcm_jobs[2];

static SmsPcmFile
example_pcm(void)
{
	SmsPcmFile	f;

	memset(pcm_jobs, 0, sizeof(pcm_jobs));
	pcm_jobs[0].job_id = "CEN00003";
	pcm_jobs[0].package_id = "CEN00002";
	pcm_jobs[0].package_name = "Office 97 Professional";
	pcm_jobs[0].package_version = 3;
	pcm_jobs[0].program = "Install (silent)";
	pcm_jobs[0].command_line = "setup.exe /q /l \"C:\\Logs\\o97.log\" LEVEL=100% [all]";
	pcm_jobs[0].platforms = pcm_plat1;
	pcm_jobs[0].nplatforms = 2;
	pcm_jobs[0].offer_after = T("2026-03-02T09:00:00Z");
	pcm_jobs[0].mandatory_at = T("2026-03-05T18:30:00Z");
	pcm_jobs[0].expires_at = T("2026-04-01T00:00:00Z");
	pcm_jobs[0].max_run_minutes = 120;
	pcm_jobs[0].locations = pcm_loc1;
	pcm_jobs[0].nlocations = 2;
	pcm_jobs[0].package_sha256 = sha_a;

	pcm_jobs[1].job_id = "CEN0001F";
	pcm_jobs[1].package_id = "CEN0000A";
	pcm_jobs[1].package_name = "Naïve Ünicode Tool – 日本語";
	pcm_jobs[1].package_version = 1;
	pcm_jobs[1].program = "run";
	pcm_jobs[1].user_rights = true;
	pcm_jobs[1].command_line = "tool --name=x; echo ok";
	pcm_jobs[1].offer_after = T("2026-03-02T09:00:00Z");
	pcm_jobs[1].mandatory_at = SMS_TIME_NONE;
	pcm_jobs[1].expires_at = SMS_TIME_NONE;
	pcm_jobs[1].locations = pcm_loc2;
	pcm_jobs[1].nlocations = 1;
	pcm_jobs[1].package_sha256 = sha_b;

	memset(&f, 0, sizeof(f));
	f.machine = "CEN0001A";
	f.site = "CEN";
	f.generated = T("2026-03-01T08:00:00Z");
	f.jobs = pcm_jobs;
	f.njobs = 2;
	return f;
}

static bool
pcm_equal(const SmsPcmFile *a, const SmsPcmFile *b)
{
	bool		good = true;
	size_t		i;

	SAME(streq(a->machine, b->machine));
	SAME(streq(a->site, b->site));
	SAME(a->generated == b->generated);
	SAME(a->njobs == b->njobs);
	for (i = 0; good && i < a->njobs; i++)
	{
		const SmsPcmJob *x = &a->jobs[i];
		const SmsPcmJob *y = &b->jobs[i];

		SAME(streq(x->job_id, y->job_id));
		SAME(streq(x->package_id, y->package_id));
		SAME(streq(x->package_name, y->package_name));
		SAME(x->package_version == y->package_version);
		SAME(streq(x->program, y->program));
		SAME(streq(x->command_line, y->command_line));
		SAME(list_eq(x->platforms, x->nplatforms, y->platforms, y->nplatforms));
		SAME(x->offer_after == y->offer_after);
		SAME(x->mandatory_at == y->mandatory_at);
		SAME(x->expires_at == y->expires_at);
		SAME(x->max_run_minutes == y->max_run_minutes);
		SAME(x->user_rights == y->user_rights);
		SAME(list_eq(x->locations, x->nlocations, y->locations, y->nlocations));
		SAME(streq(x->package_sha256, y->package_sha256));
	}
	return good;
}

static char *ofr_plat[] = {"WINNT_X86"};
static SmsOfferAssignment ofr_assign[2];
static SmsOfferWindow ofr_windows[2];

static SmsOfferFile
example_offer(void)
{
	SmsOfferFile f;

	memset(&f, 0, sizeof(f));
	f.advert_id = "CEN00007";
	f.name = "Office rollout – wave 1 [pilot]";
	f.package_id = "CEN00002";
	f.program = "Install (silent)";
	f.command_line = "setup.exe /q";
	f.platforms = ofr_plat;
	f.nplatforms = 1;
	f.offer_time = W("2026-03-02T08:00:00");
	f.expires_time = W("2026-06-30T23:59:59Z");
	ofr_assign[0].time = W("2026-03-03T12:00:00Z");
	ofr_assign[0].recur_every_minutes = 0;
	ofr_assign[1].time = W("2026-03-10T20:00:00");
	ofr_assign[1].recur_every_minutes = 1440;
	f.assignments = ofr_assign;
	f.nassignments = 2;
	ofr_windows[0].start_minute = 90;
	ofr_windows[0].duration_minutes = 90;
	ofr_windows[0].days = SMS_DAY_SAT | SMS_DAY_SUN;
	ofr_windows[1].start_minute = 22 * 60;
	ofr_windows[1].duration_minutes = 240;
	ofr_windows[1].days = SMS_DAY_MON | SMS_DAY_TUE | SMS_DAY_WED | SMS_DAY_THU | SMS_DAY_FRI;
	f.windows = ofr_windows;
	f.nwindows = 2;
	f.rerun = SMS_RERUN_ALWAYS;
	return f;
}

static bool
offer_equal(const SmsOfferFile *a, const SmsOfferFile *b)
{
	bool		good = true;
	size_t		i;

	SAME(streq(a->advert_id, b->advert_id));
	SAME(streq(a->name, b->name));
	SAME(streq(a->package_id, b->package_id));
	SAME(streq(a->program, b->program));
	SAME(streq(a->command_line, b->command_line));
	SAME(list_eq(a->platforms, a->nplatforms, b->platforms, b->nplatforms));
	SAME(a->offer_time.secs == b->offer_time.secs && a->offer_time.utc == b->offer_time.utc);
	SAME(a->expires_time.secs == b->expires_time.secs && a->expires_time.utc == b->expires_time.utc);
	SAME(a->nassignments == b->nassignments);
	for (i = 0; good && i < a->nassignments; i++)
	{
		SAME(a->assignments[i].time.secs == b->assignments[i].time.secs);
		SAME(a->assignments[i].time.utc == b->assignments[i].time.utc);
		SAME(a->assignments[i].recur_every_minutes == b->assignments[i].recur_every_minutes);
	}
	SAME(a->rerun == b->rerun);
	SAME(a->nwindows == b->nwindows);
	for (i = 0; good && i < a->nwindows; i++)
	{
		SAME(a->windows[i].start_minute == b->windows[i].start_minute);
		SAME(a->windows[i].duration_minutes == b->windows[i].duration_minutes);
		SAME(a->windows[i].days == b->windows[i].days);
	}
	return good;
}

static char *lkp_adv1[] = {"CEN00007", "CEN00009"};
static char *lkp_adv2[] = {"CEN00007"};
static SmsLookupEntry lkp_entries[2];

static SmsLookupFile
example_lookup(void)
{
	SmsLookupFile f;

	lkp_entries[0].name = "CEN00019";
	lkp_entries[0].adverts = lkp_adv2;
	lkp_entries[0].nadverts = 1;
	lkp_entries[1].name = "CEN0001A";
	lkp_entries[1].adverts = lkp_adv1;
	lkp_entries[1].nadverts = 2;
	memset(&f, 0, sizeof(f));
	f.site = "CEN";
	f.kind = SMS_LOOKUP_SYSTEM;
	f.entries = lkp_entries;
	f.nentries = 2;
	return f;
}

static char *ulkp_adv1[] = {"CEN00007"};
static char *ulkp_adv2[] = {"CEN00007", "CEN0000B"};
static char *ulkp_adv3[] = {"CEN0000B"};
static SmsLookupEntry ulkp_entries[3];

static SmsLookupFile
example_user_lookup(void)
{
	SmsLookupFile f;

	ulkp_entries[0].name = "CORP\\Alice (admin)";
	ulkp_entries[0].adverts = ulkp_adv1;
	ulkp_entries[0].nadverts = 1;
	ulkp_entries[1].name = "corp\\bob";
	ulkp_entries[1].adverts = ulkp_adv2;
	ulkp_entries[1].nadverts = 2;
	ulkp_entries[2].name = "ÉCOLE\\josé";
	ulkp_entries[2].adverts = ulkp_adv3;
	ulkp_entries[2].nadverts = 1;
	memset(&f, 0, sizeof(f));
	f.site = "CH1";
	f.kind = SMS_LOOKUP_USER;
	f.entries = ulkp_entries;
	f.nentries = 3;
	return f;
}

static bool
lookup_equal(const SmsLookupFile *a, const SmsLookupFile *b)
{
	bool		good = true;
	size_t		i;

	SAME(streq(a->site, b->site));
	SAME(a->kind == b->kind);
	SAME(a->nentries == b->nentries);
	for (i = 0; good && i < a->nentries; i++)
	{
		SAME(streq(a->entries[i].name, b->entries[i].name));
		SAME(list_eq(a->entries[i].adverts, a->entries[i].nadverts,
					 b->entries[i].adverts, b->entries[i].nadverts));
	}
	return good;
}

static char *pkg_plat[] = {"WINNT_X86", "WIN_X64"};
static SmsPackageProgram pkg_programs[2];

static SmsPackageFile
example_package(void)
{
	SmsPackageFile f;

	memset(pkg_programs, 0, sizeof(pkg_programs));
	pkg_programs[0].name = "Install (silent)";
	pkg_programs[0].command_line = "setup.exe /q /l \"C:\\Logs\\o97.log\"";
	pkg_programs[0].platforms = pkg_plat;
	pkg_programs[0].nplatforms = 2;
	pkg_programs[0].max_run_minutes = 120;
	pkg_programs[1].name = "Uninstall";
	pkg_programs[1].command_line = "setup.exe /u";
	pkg_programs[1].user_rights = true;
	memset(&f, 0, sizeof(f));
	f.package_id = "CEN00002";
	f.name = "Office 97 Professional";
	f.product_version = "97 SR-2";
	f.manufacturer = "Microsoft";
	f.language = "English";
	f.source_version = 3;
	f.sha256 = sha_a;
	f.has_icon = true;
	f.icon_sha256 = sha_b;
	f.programs = pkg_programs;
	f.nprograms = 2;
	return f;
}

static bool
package_equal(const SmsPackageFile *a, const SmsPackageFile *b)
{
	bool		good = true;
	size_t		i;

	SAME(streq(a->package_id, b->package_id));
	SAME(streq(a->name, b->name));
	SAME(streq(a->product_version, b->product_version));
	SAME(streq(a->manufacturer, b->manufacturer));
	SAME(streq(a->language, b->language));
	SAME(a->source_version == b->source_version);
	SAME(streq(a->sha256, b->sha256));
	SAME(a->has_icon == b->has_icon);
	SAME(streq(a->icon_sha256, b->icon_sha256));
	SAME(a->nprograms == b->nprograms);
	for (i = 0; good && i < a->nprograms; i++)
	{
		SAME(streq(a->programs[i].name, b->programs[i].name));
		SAME(streq(a->programs[i].command_line, b->programs[i].command_line));
		SAME(list_eq(a->programs[i].platforms, a->programs[i].nplatforms,
					 b->programs[i].platforms, b->programs[i].nplatforms));
		SAME(a->programs[i].max_run_minutes == b->programs[i].max_run_minutes);
		SAME(a->programs[i].user_rights == b->programs[i].user_rights);
	}
	return good;
}

static SmsNalLocation nal_locs[3];

static SmsNalFile
example_nal(void)
{
	SmsNalFile	f;

	nal_locs[0].site = "CEN";
	nal_locs[0].server = "DP1";
	nal_locs[0].path = "/mnt/d/SMS_PKGD/CEN00002";
	nal_locs[1].site = "CEN";
	nal_locs[1].server = "DP1";
	nal_locs[1].path = "/srv/sms/SMS_PKGC/CEN00002";
	nal_locs[2].site = "CH1";
	nal_locs[2].server = "ch1-dp_2";
	nal_locs[2].path = "/srv/sms/SMS_PKGD/CEN00002";
	memset(&f, 0, sizeof(f));
	f.package_id = "CEN00002";
	f.source_version = 3;
	f.locations = nal_locs;
	f.nlocations = 3;
	return f;
}

static bool
nal_equal(const SmsNalFile *a, const SmsNalFile *b)
{
	bool		good = true;
	size_t		i;

	SAME(streq(a->package_id, b->package_id));
	SAME(a->source_version == b->source_version);
	SAME(a->nlocations == b->nlocations);
	SAME(a->removed == b->removed);
	for (i = 0; good && i < a->nlocations; i++)
	{
		SAME(streq(a->locations[i].site, b->locations[i].site));
		SAME(streq(a->locations[i].server, b->locations[i].server));
		SAME(streq(a->locations[i].path, b->locations[i].path));
	}
	return good;
}

static SmsStatusFile
example_status(void)
{
	SmsStatusFile f;

	memset(&f, 0, sizeof(f));
	f.machine = "CEN0001A";
	f.site = "CEN";
	f.sequence = 42;
	f.at = T("2026-03-03T12:05:09Z");
	f.message_id = 10009;
	f.severity = SMS_STATUS_WARNING;
	f.component = "Program Manager";
	f.advert_id = "CEN00007";
	f.job_id = "CEN00003";
	f.package_id = "CEN00002";
	f.text = "Program \"Install (silent)\" exited with code 3010:\n\treboot pending; 100% done = [ok]";
	f.has_exit_code = true;
	f.exit_code = 3010;
	return f;
}

static bool
status_equal(const SmsStatusFile *a, const SmsStatusFile *b)
{
	bool		good = true;

	SAME(streq(a->machine, b->machine));
	SAME(streq(a->site, b->site));
	SAME(a->sequence == b->sequence);
	SAME(a->at == b->at);
	SAME(a->message_id == b->message_id);
	SAME(a->severity == b->severity);
	SAME(streq(a->component, b->component));
	SAME(streq(a->advert_id, b->advert_id));
	SAME(streq(a->job_id, b->job_id));
	SAME(streq(a->package_id, b->package_id));
	SAME(streq(a->text, b->text));
	SAME(a->has_exit_code == b->has_exit_code);
	SAME(!a->has_exit_code || a->exit_code == b->exit_code);
	return good;
}

/*
 * The signed form: the example with a key ends with its hmac line
 * (status-signed.txt), verifies with that key and with no other, and
 * nothing in it can change without the hmac failing.
 */
static void
test_status_signed(void)
{
	uint8_t		key[SMS_STATUS_KEY_LEN];
	uint8_t		other[SMS_STATUS_KEY_LEN];
	SmsStatusFile ex = example_status();
	SmsStatusFile back;
	char	   *text = NULL;
	char	   *g;
	size_t		len = 0,
				glen = 0;
	char		err[512] = "";
	bool		r;

	for (int i = 0; i < SMS_STATUS_KEY_LEN; i++)
	{
		key[i] = (uint8_t) i;
		other[i] = (uint8_t) (i + 1);
	}
	ex.key = key;
	r = sms_status_to_text(&ex, &text, &len, err, sizeof(err));
	if (!r)
		diag("%s", err);
	ok(r && matches_golden("status-signed.txt", text, len),
	   "status: the example signed with a key serializes to status-signed.txt");
	free(text);
	if (write_golden)
		return;
	g = slurp(golden_dir, "status-signed.txt", &glen);
	r = g != NULL && sms_status_parse(g, glen, &back, err, sizeof(err));
	ok(r && status_equal(&ex, &back) && strlen(back.hmac) == SMS_STATUS_HMAC_HEX &&
	   back.signed_len + 70 == glen,
	   "status: status-signed.txt parses back, with its hmac line and the bytes it covers");
	ok(r && sms_status_verify(g, glen, &back, key, err, sizeof(err)),
	   "status: status-signed.txt verifies with its machine's key");
	if (r)
	{
		refused(sms_status_verify(g, glen, &back, other, err, sizeof(err)), err,
				"does not verify with the key of machine CEN0001A",
				"status: another machine's key does not verify it");
		sms_status_free(&back);
	}
	if (g != NULL)
	{
		char	   *t = malloc(glen);
		char	   *p;

		/* one changed byte of the text */
		memcpy(t, g, glen);
		p = strstr(t, "code 3010");
		p[5] = '0';
		r = sms_status_parse(t, glen, &back, err, sizeof(err));
		refused(r && sms_status_verify(t, glen, &back, key, err, sizeof(err)), err,
				"does not verify", "status: a changed byte of the text does not verify");
		if (r)
			sms_status_free(&back);
		/* the exit code is signed too: 3010 made 3011 */
		memcpy(t, g, glen);
		p = strstr(t, "exit_code=3010\n");
		if (p != NULL)
			p[13] = '1';
		r = p != NULL && sms_status_parse(t, glen, &back, err, sizeof(err));
		ok(r && back.exit_code == 3011, "status: the changed exit code parses (3011)");
		refused(r && sms_status_verify(t, glen, &back, key, err, sizeof(err)), err,
				"does not verify", "status: a changed exit code does not verify");
		if (r)
			sms_status_free(&back);
		free(t);
	}
	free(g);
	g = slurp(golden_dir, "status.txt", &glen);
	r = g != NULL && sms_status_parse(g, glen, &back, err, sizeof(err));
	ok(r && back.hmac[0] == '\0', "status: an unsigned file parses, with no hmac");
	refused(r && sms_status_verify(g, glen, &back, key, err, sizeof(err)), err,
			"no hmac line", "status: an unsigned file does not verify");
	if (r)
		sms_status_free(&back);
	free(g);
	{
		uint8_t		k[SMS_STATUS_KEY_LEN];
		const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

		ok(sms_status_key_from_hex(hex, strlen(hex), k, err, sizeof(err)) && memcmp(k, key, sizeof(k)) == 0,
		   "status: a machine key from its hex form");
		refused(sms_status_key_from_hex("00zz", 4, k, err, sizeof(err)), err, "64 hexadecimal digits",
				"status: a short or non-hex machine key is refused");
	}
}

/*
 * A cache inventory file (<MACHINE>.INV): a signed status file, message
 * 10030, with an inventory= line (inventory-signed.txt); the line must be
 * one JSON object of printable ASCII, at most SMS_STATUS_INVENTORY_MAX.
 */
static void
test_inventory(void)
{
	uint8_t		key[SMS_STATUS_KEY_LEN];
	SmsStatusFile ex = {0};
	SmsStatusFile back;
	char	   *text = NULL;
	char	   *g;
	char	   *big;
	size_t		len = 0,
				glen = 0;
	char		err[512] = "";
	char		name[SMS_FMT_NAME_BUFLEN];
	char		machine[16];
	bool		r;

	for (int i = 0; i < SMS_STATUS_KEY_LEN; i++)
		key[i] = (uint8_t) i;
	ex.machine = "CEN0001A";
	ex.site = "CEN";
	ex.sequence = 0;
	ex.at = 1772539509;			/* 2026-03-03T12:05:09Z */
	ex.message_id = SMS_STATUS_CACHE_INVENTORY;
	ex.severity = SMS_STATUS_INFO;
	ex.component = "Client Agent";
	ex.text = "Download cache inventory: 1 package";
	ex.inventory = "{\"size_limit_bytes\": 1048576, \"used_bytes\": 307200, \"locked_bytes\": 307200, "
		"\"utc_offset_seconds\": 19800, \"packages\": [{\"package_id\": \"CEN00002\", \"source_version\": 1, "
		"\"bytes\": 307200, \"downloaded_at\": \"2026-03-01T00:00:00Z\", \"locked_until\": \"2026-03-31T00:00:00Z\", "
		"\"last_run_at\": null}]}";
	ex.key = key;
	r = sms_status_to_text(&ex, &text, &len, err, sizeof(err));
	if (!r)
		diag("%s", err);
	ok(r && matches_golden("inventory-signed.txt", text, len),
	   "inventory: the example signed with a key serializes to inventory-signed.txt");
	free(text);
	if (write_golden)
		return;
	g = slurp(golden_dir, "inventory-signed.txt", &glen);
	r = g != NULL && sms_status_parse(g, glen, &back, err, sizeof(err));
	ok(r && back.message_id == SMS_STATUS_CACHE_INVENTORY && streq(back.inventory, ex.inventory) &&
	   sms_status_verify(g, glen, &back, key, err, sizeof(err)),
	   "inventory: inventory-signed.txt parses back with its inventory and verifies");
	if (r)
		sms_status_free(&back);
	free(g);
	ex.key = NULL;
	ex.inventory = "{\"a\":\t1}";
	refused(sms_status_to_text(&ex, &text, &len, err, sizeof(err)), err, "printable ASCII",
			"inventory: a control character is refused");
	ex.inventory = "[1, 2]";
	refused(sms_status_to_text(&ex, &text, &len, err, sizeof(err)), err, "a JSON object",
			"inventory: not an object is refused");
	big = malloc(SMS_STATUS_INVENTORY_MAX + 2);
	memset(big, ' ', SMS_STATUS_INVENTORY_MAX + 1);
	big[0] = '{';
	big[SMS_STATUS_INVENTORY_MAX] = '}';
	big[SMS_STATUS_INVENTORY_MAX + 1] = '\0';
	ex.inventory = big;
	refused(sms_status_to_text(&ex, &text, &len, err, sizeof(err)), err, "at most 262144 bytes",
			"inventory: more than 256 kB is refused");
	free(big);
	ok(sms_fmt_file_name(SMS_FILE_INVENTORY, "CEN0001A", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN0001A.INV") == 0 && sms_fmt_parse_inventory_name(name, machine) &&
	   strcmp(machine, "CEN0001A") == 0 &&
	   !sms_fmt_parse_inventory_name("cen0001a.INV", machine) &&
	   !sms_fmt_parse_inventory_name("CEN0001A.INV.bad", machine) &&
	   !sms_fmt_parse_inventory_name("CEN0001A.0000000042.SMS", machine),
	   "file name: inventory <MACHINE>.INV, and back; others refused");
}

/* ----------------------------------------------------------------
 * Golden tests, one block per format: serialize == golden, parse(golden)
 * == example, serialize(parse(golden)) == golden.
 * ----------------------------------------------------------------
 */
#define GOLDEN_TESTS(fmt, file, example, equal, Type) \
	do { \
		Type		ex = example(); \
		Type		back; \
		char	   *text = NULL; \
		char	   *g; \
		size_t		len = 0, glen = 0; \
		char		err[512] = ""; \
		bool		r = sms_##fmt##_to_text(&ex, &text, &len, err, sizeof(err)); \
		if (!r) diag("%s", err); \
		ok(r && matches_golden(file, text, len), #fmt ": the example serializes to %s", file); \
		free(text); \
		if (write_golden) break; \
		g = slurp(golden_dir, file, &glen); \
		r = g != NULL && sms_##fmt##_parse(g, glen, &back, err, sizeof(err)); \
		if (g != NULL && !r) diag("%s", err); \
		ok(r && equal(&ex, &back), #fmt ": %s parses back to every field of the example", file); \
		text = NULL; \
		if (r && sms_##fmt##_to_text(&back, &text, &len, err, sizeof(err))) \
			ok(len == glen && memcmp(text, g, len) == 0, #fmt ": the parsed %s serializes to the same bytes", file); \
		else \
			ok(false, #fmt ": the parsed %s serializes to the same bytes", file); \
		free(text); \
		if (r) sms_##fmt##_free(&back); \
		free(g); \
	} while (0)

/*
 * Files of the previous writers (golden/offer-0.7.txt, status-0.7.txt: no rerun_behaviour in an
 * offer, no exit_code in a status message) still parse, with the defaults.
 */
static void
test_older_files(void)
{
	char		err[512] = "";
	size_t		glen = 0;
	char	   *g;
	bool		r;

	g = slurp(golden_dir, "offer-0.7.txt", &glen);
	{
		SmsOfferFile ex = example_offer();
		SmsOfferFile back;

		r = g != NULL && sms_offer_parse(g, glen, &back, err, sizeof(err));
		if (g != NULL && !r)
			diag("%s", err);
		ex.rerun = SMS_RERUN_IF_FAILED;
		ok(r && offer_equal(&ex, &back) && back.rerun == SMS_RERUN_IF_FAILED,
		   "offer: a file without rerun_behaviour parses, as rerun_if_failed");
		if (r)
			sms_offer_free(&back);
	}
	free(g);
	g = slurp(golden_dir, "status-0.7.txt", &glen);
	{
		SmsStatusFile ex = example_status();
		SmsStatusFile back;

		r = g != NULL && sms_status_parse(g, glen, &back, err, sizeof(err));
		if (g != NULL && !r)
			diag("%s", err);
		ex.has_exit_code = false;
		ok(r && status_equal(&ex, &back) && !back.has_exit_code && back.exit_code == 0,
		   "status: a file without exit_code parses, with no exit code");
		if (r)
			sms_status_free(&back);
	}
	free(g);
	{
		const char *bad =
			"[smsdist]\nformat=offer\nversion=1\nadvert_id=CEN00007\nname=n\npackage_id=CEN00002\n"
			"program=p\ncommand_line=c\nplatforms=\noffer_time=2026-03-02T08:00:00Z\noffer_time_utc=true\n"
			"rerun_behaviour=sometimes\n";
		const char *neg =
			"[smsdist]\nformat=status\nversion=1\nmachine=CEN0001A\nsite=CEN\nsequence=1\n"
			"at=2026-03-03T12:05:09Z\nmessage_id=10009\nseverity=error\ncomponent=Client Agent\n"
			"exit_code=-1\ntext=t\n";
		SmsOfferFile o;
		SmsStatusFile m;
		SmsOfferFile f = example_offer();
		char	   *text = NULL;
		size_t		len;

		refused(sms_offer_parse(bad, strlen(bad), &o, err, sizeof(err)), err,
				"must be never_rerun, always_rerun, rerun_if_failed or rerun_if_succeeded",
				"offer reader: refuses an unknown rerun behaviour");
		refused(sms_status_parse(neg, strlen(neg), &m, err, sizeof(err)), err,
				"exit_code", "status reader: refuses a negative exit code");
		f.rerun = (SmsRerunBehaviour) 9;
		refused(sms_offer_to_text(&f, &text, &len, err, sizeof(err)), err,
				"unknown rerun behaviour", "offer writer: refuses an unknown rerun behaviour");
		for (int b = 0; b < 4; b++)
		{
			SmsRerunBehaviour back;

			ok(sms_rerun_from_name(sms_rerun_name((SmsRerunBehaviour) b), &back) && (int) back == b,
			   "rerun behaviour %s: name and back", sms_rerun_name((SmsRerunBehaviour) b));
		}
	}
}

static void
test_golden(void)
{
	GOLDEN_TESTS(pcm, "pcm.txt", example_pcm, pcm_equal, SmsPcmFile);
	GOLDEN_TESTS(offer, "offer.txt", example_offer, offer_equal, SmsOfferFile);
	GOLDEN_TESTS(lookup, "lookup-system.txt", example_lookup, lookup_equal, SmsLookupFile);
	GOLDEN_TESTS(lookup, "lookup-user.txt", example_user_lookup, lookup_equal, SmsLookupFile);
	GOLDEN_TESTS(package, "package.txt", example_package, package_equal, SmsPackageFile);
	GOLDEN_TESTS(nal, "nal.txt", example_nal, nal_equal, SmsNalFile);
	GOLDEN_TESTS(status, "status.txt", example_status, status_equal, SmsStatusFile);
	test_status_signed();
	test_inventory();
	{
		SmsInstallFile ins = {"CEN00007", "CEN00010"};
		SmsInstallFile back;
		char	   *text = NULL;
		size_t		len = 0;
		char		err[512] = "";
		bool		r = sms_install_to_text(&ins, &text, &len, err, sizeof(err));

		ok(r && matches_golden("install.txt", text, len), "install: the example serializes to install.txt");
		if (!write_golden)
		{
			r = r && sms_install_parse(text, len, &back, err, sizeof(err));
			ok(r && streq(back.advert_id, "CEN00007") && streq(back.collection_id, "CEN00010"),
			   "install: parses back to every field");
			if (r)
				sms_install_free(&back);
		}
		free(text);
	}
	{
		SmsHeartbeatFile hb = {"CEN", 1772540709, 60};	/* 2026-03-03T12:25:09Z */
		SmsHeartbeatFile back;
		char	   *text = NULL;
		size_t		len = 0;
		char		err[512] = "";
		bool		r = sms_heartbeat_to_text(&hb, &text, &len, err, sizeof(err));

		ok(r && matches_golden("heartbeat.txt", text, len), "heartbeat: the example serializes to heartbeat.txt");
		if (!write_golden)
		{
			r = r && sms_heartbeat_parse(text, len, &back, err, sizeof(err));
			ok(r && streq(back.site, "CEN") && back.site_time == 1772540709 && back.interval_seconds == 60,
			   "heartbeat: parses back to every field");
			if (r)
				sms_heartbeat_free(&back);
		}
		free(text);
		hb.interval_seconds = 0;
		ok(!sms_heartbeat_to_text(&hb, &text, &len, err, sizeof(err)) && strstr(err, "interval_seconds") != NULL,
		   "heartbeat: an interval of 0 s is refused");
	}
}

/* Writers sort: the same rows in another order give the same bytes. */
static void
test_deterministic(void)
{
	char	   *text;
	size_t		len;
	char		err[512] = "";

	{
		SmsPcmFile	f = example_pcm();
		SmsPcmJob	rev[2];

		rev[0] = pcm_jobs[1];
		rev[1] = pcm_jobs[0];
		f.jobs = rev;
		text = NULL;
		ok(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)) && matches_golden("pcm.txt", text, len),
		   "pcm: jobs given in another order give the same bytes");
		free(text);
	}
	{
		SmsOfferFile f = example_offer();
		SmsOfferAssignment ra[2];
		SmsOfferWindow rw[2];

		ra[0] = ofr_assign[1];
		ra[1] = ofr_assign[0];
		rw[0] = ofr_windows[1];
		rw[1] = ofr_windows[0];
		f.assignments = ra;
		f.windows = rw;
		text = NULL;
		ok(sms_offer_to_text(&f, &text, &len, err, sizeof(err)) && matches_golden("offer.txt", text, len),
		   "offer: assignments and windows in another order give the same bytes");
		free(text);
	}
	{
		SmsLookupFile f = example_lookup();
		SmsLookupEntry re[2];
		char	   *adv[] = {"CEN00009", "CEN00007"};

		re[0] = lkp_entries[1];
		re[0].adverts = adv;
		re[1] = lkp_entries[0];
		f.entries = re;
		text = NULL;
		ok(sms_lookup_to_text(&f, &text, &len, err, sizeof(err)) && matches_golden("lookup-system.txt", text, len),
		   "lookup: entries and advertisements in another order give the same bytes");
		free(text);
	}
	{
		SmsPackageFile f = example_package();
		SmsPackageProgram rp[2];

		rp[0] = pkg_programs[1];
		rp[1] = pkg_programs[0];
		f.programs = rp;
		text = NULL;
		ok(sms_package_to_text(&f, &text, &len, err, sizeof(err)) && matches_golden("package.txt", text, len),
		   "package: programs in another order give the same bytes");
		free(text);
	}
	{
		SmsNalFile	f = example_nal();
		SmsNalLocation rl[3];

		rl[0] = nal_locs[2];
		rl[1] = nal_locs[0];
		rl[2] = nal_locs[1];
		f.locations = rl;
		text = NULL;
		ok(sms_nal_to_text(&f, &text, &len, err, sizeof(err)) && matches_golden("nal.txt", text, len),
		   "nal: locations in another order give the same bytes");
		free(text);
	}
	{
		/* a package removed from the site: removed=true and no location */
		SmsNalFile	f = {0};
		SmsNalFile	back = {0};
		static const char with_location[] =
			"[smsdist]\nformat=nal\nversion=1\npackage_id=CEN00002\nsource_version=3\nremoved=true\n\n"
			"[location 1]\nsite=CEN\nserver=DP1\npath=/srv/sms/SMS_PKGC/CEN00002\n";

		f.package_id = "CEN00002";
		f.source_version = 3;
		f.removed = true;
		text = NULL;
		ok(sms_nal_to_text(&f, &text, &len, err, sizeof(err)) && strstr(text, "\nremoved=true\n") != NULL &&
		   sms_nal_parse(text, len, &back, err, sizeof(err)) && back.removed && back.nlocations == 0,
		   "nal: a removed package is written with removed=true and read back");
		sms_nal_free(&back);
		free(text);
		f = example_nal();
		f.removed = true;
		text = NULL;
		ok(!sms_nal_to_text(&f, &text, &len, err, sizeof(err)) && strstr(err, "no location") != NULL,
		   "nal: a removed package with a location is not written");
		ok(!sms_nal_parse(with_location, strlen(with_location), &back, err, sizeof(err)) &&
		   strstr(err, "no location") != NULL,
		   "nal: nor read");
		f = example_nal();
		text = NULL;
		ok(sms_nal_to_text(&f, &text, &len, err, sizeof(err)) && strstr(text, "removed") == NULL,
		   "nal: a package that is here has no removed key");
		free(text);
	}
}

/* ----------------------------------------------------------------
 * The common layer
 * ----------------------------------------------------------------
 */
static bool
parse_text(const char *text, const char *format, SmsFmtDoc **doc, char *err, size_t errlen)
{
	return sms_fmt_parse(text, strlen(text), format, doc, err, errlen);
}

/* Parse a one-value document and return the decoded value (malloc'd). */
static char *
parse_value(const char *line, char *err, size_t errlen)
{
	char		text[1024];
	SmsFmtDoc  *doc;
	char	   *v = NULL;

	snprintf(text, sizeof(text), "[smsdist]\nformat=test\nversion=1\n[s]\n%s\n", line);
	if (!parse_text(text, "test", &doc, err, errlen))
		return NULL;
	if (sms_fmt_get(doc->sections[1], "v") != NULL)
		v = strdup(sms_fmt_get(doc->sections[1], "v"));
	sms_fmt_doc_free(doc);
	return v;
}

static bool
roundtrip_value(const char *value, char *err, size_t errlen)
{
	SmsFmtDoc  *doc = sms_fmt_doc_new("test", err, errlen);
	SmsFmtDoc  *back = NULL;
	SmsFmtSection *s;
	char	   *text = NULL;
	size_t		len;
	bool		r;

	r = doc != NULL && (s = sms_fmt_add_section(doc, "s", err, errlen)) != NULL &&
		sms_fmt_set(s, "v", value, err, errlen) &&
		sms_fmt_set(s, "w", "after", err, errlen) &&
		sms_fmt_serialize(doc, &text, &len, err, errlen) &&
		sms_fmt_parse(text, len, "test", &back, err, errlen) &&
		back->nsections == 2 && back->sections[1]->nentries == 2 &&
		streq(sms_fmt_get(back->sections[1], "v"), value) &&
		streq(sms_fmt_get(back->sections[1], "w"), "after");
	sms_fmt_doc_free(doc);
	sms_fmt_doc_free(back);
	free(text);
	return r;
}

static void
test_common(void)
{
	char		err[512];
	SmsFmtDoc  *doc;
	SmsFmtSection *s;
	char	   *text = NULL;
	char	   *v;
	size_t		len;
	bool		r;

	/* encoding */
	doc = sms_fmt_doc_new("test", err, sizeof(err));
	s = doc ? sms_fmt_add_section(doc, "a b.c-d_e", err, sizeof(err)) : NULL;
	r = s != NULL && sms_fmt_set(s, "v", "100%\r\n\tx\x7f=é", err, sizeof(err)) &&
		sms_fmt_serialize(doc, &text, &len, err, sizeof(err));
	ok(r && strcmp(text, "[smsdist]\nformat=test\nversion=1\n\n[a b.c-d_e]\nv=100%25%0D%0A%09x%7F=é\n") == 0 &&
	   len == strlen(text), "encoding: %% CR LF TAB DEL become %%XX, the rest stays");
	free(text);
	text = NULL;

	/* builder refusals */
	ok(sms_fmt_add_section(doc, "bad]name", err, sizeof(err)) == NULL, "builder: refuses a section name with ]");
	ok(!sms_fmt_set(s, "Bad", "x", err, sizeof(err)), "builder: refuses an upper-case key");
	ok(!sms_fmt_set(s, "w", "\xff\xfe", err, sizeof(err)), "builder: refuses a value that is not UTF-8");
	r = sms_fmt_set(s, "v", "again", err, sizeof(err)) &&
		sms_fmt_serialize(doc, &text, &len, err, sizeof(err));
	refused(r, err, "duplicate key \"v\"", "builder: serializing refuses a duplicate key");
	sms_fmt_doc_free(doc);

	doc = sms_fmt_doc_new("test", err, sizeof(err));
	r = sms_fmt_add_section(doc, "x", err, sizeof(err)) != NULL &&
		sms_fmt_add_section(doc, "x", err, sizeof(err)) != NULL &&
		sms_fmt_serialize(doc, &text, &len, err, sizeof(err));
	refused(r, err, "duplicate section [x]", "builder: serializing refuses a duplicate section");
	sms_fmt_doc_free(doc);

	/* decoding */
	v = parse_value("v=100%25%0D%0A%09x%7f=é;[]", err, sizeof(err));
	ok(streq(v, "100%\r\n\tx\x7f=é;[]"), "decoding: escapes (either case of hex) decode, = ; [ ] stay");
	free(v);
	v = parse_value("v=", err, sizeof(err));
	ok(streq(v, ""), "decoding: an empty value");
	free(v);
	v = parse_value("v==x=", err, sizeof(err));
	ok(streq(v, "=x="), "decoding: the value is everything after the first =");
	free(v);
	ok(parse_value("v=50%", err, sizeof(err)) == NULL && strstr(err, "malformed escape"),
	   "decoding: refuses a %% at the end");
	ok(parse_value("v=%4", err, sizeof(err)) == NULL && strstr(err, "malformed escape"),
	   "decoding: refuses %% with one digit");
	ok(parse_value("v=%G1", err, sizeof(err)) == NULL && strstr(err, "malformed escape"),
	   "decoding: refuses %% with a non-hex digit");
	ok(parse_value("v=a%00b", err, sizeof(err)) == NULL && strstr(err, "NUL"),
	   "decoding: refuses %%00 (NUL)");
	ok(parse_value("v=%C3%28", err, sizeof(err)) == NULL && strstr(err, "UTF-8"),
	   "decoding: refuses escapes that decode to invalid UTF-8");
	ok(parse_value("v=%C0%AF", err, sizeof(err)) == NULL && strstr(err, "UTF-8"),
	   "decoding: refuses an overlong UTF-8 form");
	ok(parse_value("v=%ED%A0%80", err, sizeof(err)) == NULL && strstr(err, "UTF-8"),
	   "decoding: refuses an encoded surrogate");
	ok(parse_value("v=\xf4\x90\x80\x80", err, sizeof(err)) == NULL && strstr(err, "UTF-8"),
	   "decoding: refuses a code point above U+10FFFF");
	ok(parse_value("v=a\tb", err, sizeof(err)) == NULL && strstr(err, "control character"),
	   "decoding: refuses a raw TAB (must be %%09)");
	ok(parse_value("V=x", err, sizeof(err)) == NULL && strstr(err, "expected key=value"),
	   "parsing: refuses an upper-case key");
	ok(parse_value("just text", err, sizeof(err)) == NULL && strstr(err, "expected key=value"),
	   "parsing: refuses a line without =");
	ok(parse_value("[unterminated", err, sizeof(err)) == NULL && strstr(err, "malformed section"),
	   "parsing: refuses a section header without ]");
	ok(parse_value("[a/b]", err, sizeof(err)) == NULL && strstr(err, "malformed section"),
	   "parsing: refuses a section name with /");

	/* structure */
	r = parse_text("; comment\n\n[smsdist]\n; another\nformat=test\n\nversion=1\n[s]\nv=1\n", "test", &doc, err, sizeof(err));
	ok(r && doc->nsections == 2 && streq(sms_fmt_get(sms_fmt_find_section(doc, "s"), "v"), "1") &&
	   sms_fmt_find_section(doc, "t") == NULL && sms_fmt_get(doc->sections[1], "w") == NULL,
	   "parsing: comments and blank lines are ignored; find_section and get");
	if (r)
		sms_fmt_doc_free(doc);
	refused(parse_text("[smsdist]\nformat=test\nversion=1\nv=1\nv=2\n", "test", &doc, err, sizeof(err)),
			err, "line 5: duplicate key \"v\"", "parsing: refuses a duplicate key, naming the line");
	refused(parse_text("[smsdist]\nformat=test\nversion=1\n[s]\n[s]\n", "test", &doc, err, sizeof(err)),
			err, "duplicate section [s]", "parsing: refuses a duplicate section");
	refused(parse_text("format=test\n[smsdist]\n", "test", &doc, err, sizeof(err)),
			err, "must begin with [smsdist]", "parsing: refuses a key before any section");
	refused(parse_text("[other]\nformat=test\nversion=1\n", "test", &doc, err, sizeof(err)),
			err, "first section must be [smsdist]", "parsing: refuses a file whose first section is not [smsdist]");
	refused(parse_text("[smsdist]\r\nformat=test\r\nversion=1\r\n", "test", &doc, err, sizeof(err)),
			err, "CR", "parsing: refuses CRLF line endings");
	refused(parse_text("[smsdist]\nformat=test\nversion=1", "test", &doc, err, sizeof(err)),
			err, "does not end with a line feed", "parsing: refuses a file cut short (no final LF)");
	refused(parse_text("", "test", &doc, err, sizeof(err)), err, "empty", "parsing: refuses an empty file");
	refused(parse_text("; only a comment\n", "test", &doc, err, sizeof(err)),
			err, "no [smsdist]", "parsing: refuses a file with no sections");

	/* header and versions */
	refused(parse_text("[smsdist]\nformat=offer\nversion=1\n", "pcm", &doc, err, sizeof(err)),
			err, "not a \"pcm\" file", "header: refuses another format");
	refused(parse_text("[smsdist]\nformat=pcm\nversion=2\n[job X]\nnew syntax here\n", "pcm", &doc, err, sizeof(err)),
			err, "version 2", "header: refuses major version 2 before reading what follows");
	refused(parse_text("[smsdist]\nformat=pcm\nversion=10.0\n", "pcm", &doc, err, sizeof(err)),
			err, "version 10.0", "header: refuses major version 10");
	r = parse_text("[smsdist]\nformat=pcm\nversion=1.7\nnew_key=x\n[new section]\nk=v\n", "pcm", &doc, err, sizeof(err));
	ok(r, "header: accepts 1.7 (a minor version), unknown keys and sections");
	if (r)
		sms_fmt_doc_free(doc);
	refused(parse_text("[smsdist]\nformat=pcm\nversion=one\n", "pcm", &doc, err, sizeof(err)),
			err, "malformed version", "header: refuses a malformed version");
	refused(parse_text("[smsdist]\nformat=pcm\nversion=0\n", "pcm", &doc, err, sizeof(err)),
			err, "malformed version", "header: refuses version 0");
	refused(parse_text("[smsdist]\nformat=pcm\n", "pcm", &doc, err, sizeof(err)),
			err, "no version key", "header: refuses a header without version");
	r = parse_text("[smsdist]\nformat=anything\nversion=1\n", NULL, &doc, err, sizeof(err));
	ok(r, "header: a NULL expected format accepts any format");
	if (r)
		sms_fmt_doc_free(doc);

	/* limits */
	{
		size_t		n = SMS_FMT_MAX_LINE + 64;
		char	   *big = malloc(n + 64);
		size_t		hdr;

		hdr = (size_t) sprintf(big, "[smsdist]\nformat=test\nversion=1\nv=");
		memset(big + hdr, 'x', SMS_FMT_MAX_LINE - 2);
		big[hdr + SMS_FMT_MAX_LINE - 2] = '\n';
		r = sms_fmt_parse(big, hdr + SMS_FMT_MAX_LINE - 1, "test", &doc, err, sizeof(err));
		ok(r, "limits: a line of exactly %d bytes is accepted", SMS_FMT_MAX_LINE);
		if (r)
			sms_fmt_doc_free(doc);
		big[hdr + SMS_FMT_MAX_LINE - 2] = 'x';
		big[hdr + SMS_FMT_MAX_LINE - 1] = '\n';
		refused(sms_fmt_parse(big, hdr + SMS_FMT_MAX_LINE, "test", &doc, err, sizeof(err)),
				err, "longer than", "limits: a line of 1 MB + 1 byte is refused");

		/* the writer refuses what the reader would */
		big[hdr + SMS_FMT_MAX_LINE - 1] = '\0';
		doc = sms_fmt_doc_new("test", err, sizeof(err));
		r = sms_fmt_set(sms_fmt_header(doc), "v", big + hdr, err, sizeof(err)) &&
			sms_fmt_serialize(doc, &text, &len, err, sizeof(err));
		refused(r, err, "more than", "limits: the writer refuses a line the reader would refuse");
		sms_fmt_doc_free(doc);
		free(big);

		big = malloc((size_t) SMS_FMT_MAX_FILE + 1);
		memset(big, '\n', (size_t) SMS_FMT_MAX_FILE + 1);
		refused(sms_fmt_parse(big, (size_t) SMS_FMT_MAX_FILE + 1, NULL, &doc, err, sizeof(err)),
				err, "larger than", "limits: a 64 MB + 1 byte buffer is refused");
		free(big);
	}

	/* round trips of tricky values */
	{
		static const char *const tricky[] = {
			"", " ", "line1\nline2", "cr\rlf\n", "100%", "%25", "%", "a=b=c", "=",
			"[smsdist]", "[x]\nk=v", "; not a comment", "\t\ttabs", "del\x7f",
			"ünïcødé – 日本語 😀", "\xc2\x85 NEL and \xe2\x80\xa8 LS", "trailing space ",
			"\\backslash\\", "quote\"s'", "%%0A%", NULL
		};
		int			i;
		bool		all = true;

		for (i = 0; tricky[i] != NULL; i++)
			if (!roundtrip_value(tricky[i], err, sizeof(err)))
			{
				diag("value %d does not round-trip: %s", i, err);
				all = false;
			}
		ok(all, "round trip: %d tricky values (newlines, %%, =, [, unicode, empty...)", i);
	}
	{
		/* generated values from pieces that stress the encoding */
		static const char *const pieces[] = {
			"\n", "\r", "\t", "%", "=", "[", "]", ";", " ", "a", "Z", "\x7f", "\x01",
			"é", "日", "😀", "%25", "\xc2\x85", "0", "\x1f"
		};
		uint32_t	seed = 12345;
		int			i,
					j,
					bad = 0;

		for (i = 0; i < 500; i++)
		{
			char		val[256];
			int			n;

			seed = seed * 1103515245u + 12345u;
			n = (int) ((seed >> 16) % 24);
			val[0] = '\0';
			for (j = 0; j < n; j++)
			{
				seed = seed * 1103515245u + 12345u;
				strcat(val, pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))]);
			}
			if (!roundtrip_value(val, err, sizeof(err)))
			{
				if (bad++ == 0)
					diag("generated value %d does not round-trip: %s", i, err);
			}
		}
		ok(bad == 0, "round trip: 500 generated values");
	}
}

/* ----------------------------------------------------------------
 * Values: times, IDs, file names
 * ----------------------------------------------------------------
 */
static void
test_values(void)
{
	char		buf[SMS_FMT_TIME_BUFLEN];
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	char		machine[9];
	int64_t		secs = 0;
	int64_t		seq = 0;

	ok(sms_fmt_parse_time("1970-01-01T00:00:00Z", true, &secs) && secs == 0, "time: the epoch is 0");
	ok(sms_fmt_parse_time("2026-03-02T09:00:00Z", true, &secs) && secs == INT64_C(1772442000),
	   "time: 2026-03-02T09:00:00Z is 1772442000");
	ok(sms_fmt_format_time(INT64_C(1772442000), true, buf) && strcmp(buf, "2026-03-02T09:00:00Z") == 0,
	   "time: and back");
	ok(sms_fmt_format_time(-1, false, buf) && strcmp(buf, "1969-12-31T23:59:59") == 0,
	   "time: local form, before 1970");
	ok(sms_fmt_parse_time("2024-02-29T23:59:59Z", true, &secs) &&
	   sms_fmt_format_time(secs, true, buf) && strcmp(buf, "2024-02-29T23:59:59Z") == 0,
	   "time: a leap day");
	ok(sms_fmt_parse_time("0001-01-01T00:00:00Z", true, &secs) &&
	   sms_fmt_format_time(secs, true, buf) && strcmp(buf, "0001-01-01T00:00:00Z") == 0 &&
	   !sms_fmt_format_time(secs - 1, true, buf) &&
	   sms_fmt_parse_time("9999-12-31T23:59:59Z", true, &secs) && !sms_fmt_format_time(secs + 1, true, buf),
	   "time: years 0001 to 9999, not beyond");
	ok(!sms_fmt_parse_time("2023-02-29T00:00:00Z", true, &secs) &&
	   !sms_fmt_parse_time("2026-04-31T00:00:00Z", true, &secs) &&
	   !sms_fmt_parse_time("2026-13-01T00:00:00Z", true, &secs) &&
	   !sms_fmt_parse_time("2026-01-01T24:00:00Z", true, &secs) &&
	   !sms_fmt_parse_time("2026-01-01T23:59:60Z", true, &secs) &&
	   !sms_fmt_parse_time("0000-01-01T00:00:00Z", true, &secs),
	   "time: refuses impossible dates and times");
	ok(!sms_fmt_parse_time("2026-01-01T00:00:00", true, &secs) &&
	   !sms_fmt_parse_time("2026-01-01T00:00:00Z", false, &secs) &&
	   !sms_fmt_parse_time("2026-01-01 00:00:00Z", true, &secs) &&
	   !sms_fmt_parse_time("2026-01-01T00:00:00+01:00", true, &secs) &&
	   !sms_fmt_parse_time("2026-1-01T00:00:00Z", true, &secs),
	   "time: refuses the wrong form (Z missing or extra, space, offsets)");

	ok(sms_fmt_valid_sms_id("CEN0001A") && sms_fmt_valid_sms_id("A1B00000") &&
	   !sms_fmt_valid_sms_id("cen0001a") && !sms_fmt_valid_sms_id("CEN0001G") &&
	   !sms_fmt_valid_sms_id("CEN0001") && !sms_fmt_valid_sms_id("CEN0001A0") &&
	   !sms_fmt_valid_sms_id("CE-0001A") && !sms_fmt_valid_sms_id(NULL),
	   "SMS ID: site code + five upper-case hex digits");
	ok(sms_fmt_valid_site_code("CEN") && sms_fmt_valid_site_code("C01") &&
	   !sms_fmt_valid_site_code("cen") && !sms_fmt_valid_site_code("CE") &&
	   !sms_fmt_valid_site_code("CENT"), "site code: three of A-Z 0-9");

	ok(sms_fmt_file_name(SMS_FILE_PCM, "CEN0001A", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN0001A") == 0, "file name: PCM = the machine's SMS ID");
	ok(sms_fmt_file_name(SMS_FILE_OFFER, "CEN00007", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN00007.OFR") == 0 &&
	   sms_fmt_file_name(SMS_FILE_INSTALL, "CEN00007", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN00007.INS") == 0, "file name: .OFR and .INS");
	ok(sms_fmt_file_name(SMS_FILE_LOOKUP_SYSTEM, "CEN", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CENSYSTM.LKP") == 0 &&
	   sms_fmt_file_name(SMS_FILE_LOOKUP_USER, "CEN", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CENUSR.LKP") == 0 &&
	   sms_fmt_file_name(SMS_FILE_LOOKUP_USERGROUP, "CEN", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CENUSRGRP.LKP") == 0, "file name: the three .LKP files");
	ok(sms_fmt_file_name(SMS_FILE_PACKAGE, "CEN00002", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN00002.PKG") == 0 &&
	   sms_fmt_file_name(SMS_FILE_ICON, "CEN00002", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN00002.ICO") == 0 &&
	   sms_fmt_file_name(SMS_FILE_NAL, "CEN00002", 0, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN00002.NAL") == 0, "file name: .PKG .ICO .NAL");
	ok(sms_fmt_file_name(SMS_FILE_STATUS, "CEN0001A", 42, name, sizeof(name), err, sizeof(err)) &&
	   strcmp(name, "CEN0001A.0000000042.SMS") == 0 &&
	   sms_fmt_parse_status_name(name, machine, &seq) && strcmp(machine, "CEN0001A") == 0 && seq == 42,
	   "file name: status <MACHINE>.<10 digits>.SMS, and back");
	ok(!sms_fmt_file_name(SMS_FILE_STATUS, "CEN0001A", INT64_C(10000000000), name, sizeof(name), err, sizeof(err)) &&
	   !sms_fmt_file_name(SMS_FILE_PCM, "../etc", 0, name, sizeof(name), err, sizeof(err)) &&
	   !sms_fmt_file_name(SMS_FILE_LOOKUP_USER, "CEN0001A", 0, name, sizeof(name), err, sizeof(err)) &&
	   !sms_fmt_parse_status_name("CEN0001A.42.SMS", machine, &seq) &&
	   !sms_fmt_parse_status_name("cen0001a.0000000042.SMS", machine, &seq),
	   "file name: refuses bad IDs and sequences");
}

/* ----------------------------------------------------------------
 * Typed formats: refusals and special rules
 * ----------------------------------------------------------------
 */
static void
test_typed(void)
{
	char		err[512];
	char	   *text = NULL;
	size_t		len;
	bool		r;

	/* PCM writer */
	{
		SmsPcmFile	f = example_pcm();
		char	   *semi[] = {"/srv/a;b"};
		char	   *dotdot[] = {"/srv/sms/../etc"};
		char	   *rel[] = {"srv/sms"};
		SmsPcmJob	dup[2];

		f.machine = "cen0001a";
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "not an SMS ID",
				"pcm writer: refuses a bad machine SMS ID");
		f = example_pcm();
		pcm_jobs[0].locations = dotdot;
		pcm_jobs[0].nlocations = 1;
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, ". or .. components",
				"pcm writer: refuses a location with ..");
		f = example_pcm();
		pcm_jobs[0].locations = semi;
		pcm_jobs[0].nlocations = 1;
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "list separator",
				"pcm writer: refuses a location containing the separator ;");
		f = example_pcm();
		pcm_jobs[1].locations = rel;
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "not an absolute path",
				"pcm writer: refuses a relative location");
		f = example_pcm();
		pcm_jobs[1].nlocations = 0;
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "may not be empty",
				"pcm writer: refuses a job without locations");
		f = example_pcm();
		pcm_jobs[0].max_run_minutes = 10081;
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "max_run_minutes",
				"pcm writer: refuses max_run_minutes above a week");
		f = example_pcm();
		pcm_jobs[0].package_sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "64 lower-case",
				"pcm writer: refuses an upper-case SHA-256");
		f = example_pcm();
		pcm_jobs[0].command_line = "two\nlines";
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "control characters",
				"pcm writer: refuses a command line with a line break");
		f = example_pcm();
		pcm_jobs[0].offer_after = SMS_TIME_NONE;
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "offer_after: missing",
				"pcm writer: refuses a job without offer_after");
		f = example_pcm();
		dup[0] = pcm_jobs[0];
		dup[1] = pcm_jobs[0];
		f.jobs = dup;
		refused(sms_pcm_to_text(&f, &text, &len, err, sizeof(err)), err, "duplicate section [job CEN00003]",
				"pcm writer: refuses two jobs with one ID");
		f = example_pcm();
		f.njobs = 0;
		r = sms_pcm_to_text(&f, &text, &len, err, sizeof(err));
		ok(r && strstr(text, "[job") == NULL, "pcm writer: a file without jobs is valid (nothing to run)");
		free(text);
		text = NULL;
	}

	/* PCM reader: forward compatibility */
	{
		const char *future =
			"[smsdist]\nformat=pcm\nversion=1.1\nmachine=CEN0001A\nsite=CEN\n"
			"generated=2026-03-01T08:00:00Z\nsigned_by=someone\n\n"
			"[job CEN00003]\npackage_id=CEN00002\npackage_name=P\npackage_version=1\n"
			"program=run\ncommand_line=x\nplatforms=\noffer_after=2026-03-02T09:00:00Z\n"
			"locations=/a\npackage_sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
			"priority=high\n\n[signature]\nalgo=ed25519\n";
		SmsPcmFile	p;

		r = sms_pcm_parse(future, strlen(future), &p, err, sizeof(err));
		if (!r)
			diag("%s", err);
		ok(r && p.njobs == 1 && p.jobs[0].nplatforms == 0 && p.jobs[0].mandatory_at == SMS_TIME_NONE &&
		   p.jobs[0].max_run_minutes == 0 && p.jobs[0].nlocations == 1,
		   "pcm reader: ignores unknown keys and sections of a newer minor version; absent optionals");
		if (r)
			sms_pcm_free(&p);
	}

	/* offer */
	{
		SmsOfferFile f = example_offer();
		const char *mismatch =
			"[smsdist]\nformat=offer\nversion=1\nadvert_id=CEN00007\nname=n\npackage_id=CEN00002\n"
			"program=p\ncommand_line=c\nplatforms=\noffer_time=2026-03-02T08:00:00\noffer_time_utc=true\n";
		const char *badday =
			"[smsdist]\nformat=offer\nversion=1\nadvert_id=CEN00007\nname=n\npackage_id=CEN00002\n"
			"program=p\ncommand_line=c\nplatforms=\noffer_time=2026-03-02T08:00:00Z\noffer_time_utc=true\n"
			"[window 1]\nstart=22:00\nduration_minutes=60\ndays=mon,funday\n";
		const char *badstart =
			"[smsdist]\nformat=offer\nversion=1\nadvert_id=CEN00007\nname=n\npackage_id=CEN00002\n"
			"program=p\ncommand_line=c\nplatforms=\noffer_time=2026-03-02T08:00:00Z\noffer_time_utc=true\n"
			"[window 1]\nstart=24:00\nduration_minutes=60\ndays=mon\n";
		const char *badnum =
			"[smsdist]\nformat=offer\nversion=1\nadvert_id=CEN00007\nname=n\npackage_id=CEN00002\n"
			"program=p\ncommand_line=c\nplatforms=\noffer_time=2026-03-02T08:00:00Z\noffer_time_utc=true\n"
			"[assignment 01]\ntime=2026-03-02T08:00:00Z\ntime_utc=true\n";
		SmsOfferFile p;

		refused(sms_offer_parse(mismatch, strlen(mismatch), &p, err, sizeof(err)), err,
				"the _utc key is true", "offer reader: refuses a local time marked _utc=true");
		refused(sms_offer_parse(badday, strlen(badday), &p, err, sizeof(err)), err,
				"mon tue wed", "offer reader: refuses an unknown day");
		refused(sms_offer_parse(badstart, strlen(badstart), &p, err, sizeof(err)), err,
				"HH:MM", "offer reader: refuses a window starting at 24:00");
		refused(sms_offer_parse(badnum, strlen(badnum), &p, err, sizeof(err)), err,
				"expected a number", "offer reader: refuses a section number with a leading zero");
		ofr_windows[0].days = 0;
		refused(sms_offer_to_text(&f, &text, &len, err, sizeof(err)), err, "at least one day",
				"offer writer: refuses a window without days");
		f = example_offer();
		ofr_assign[0].recur_every_minutes = -5;
		refused(sms_offer_to_text(&f, &text, &len, err, sizeof(err)), err, "recur_every_minutes",
				"offer writer: refuses a negative recurrence");
		f = example_offer();
		f.name = "tricky = [x] % ; , ü";
		f.expires_time.secs = SMS_TIME_NONE;
		f.nassignments = 0;
		f.nwindows = 0;
		r = sms_offer_to_text(&f, &text, &len, err, sizeof(err)) &&
			sms_offer_parse(text, len, &p, err, sizeof(err));
		ok(r && strcmp(p.name, f.name) == 0 && p.expires_time.secs == SMS_TIME_NONE &&
		   p.nassignments == 0 && p.nwindows == 0 && strstr(text, "expires_time") == NULL,
		   "offer: round trip without expiry, assignments or windows");
		if (r)
			sms_offer_free(&p);
		free(text);
		text = NULL;
	}

	/* lookup */
	{
		SmsLookupFile f = example_user_lookup();
		SmsLookupFile p;
		SmsLookupEntry dup[2];
		const SmsLookupEntry *e;
		size_t		glen = 0;
		char	   *g = slurp(golden_dir, "lookup-user.txt", &glen);

		r = g != NULL && sms_lookup_parse(g, glen, &p, err, sizeof(err));
		e = r ? sms_lookup_find(&p, "CORP\\BOB") : NULL;
		ok(e != NULL && e->nadverts == 2 && strcmp(e->adverts[0], "CEN00007") == 0 &&
		   strcmp(e->adverts[1], "CEN0000B") == 0,
		   "lookup: find ignores ASCII case and gives the sorted advertisements");
		ok(r && sms_lookup_find(&p, "corp\\carol") == NULL && sms_lookup_find(&p, "ÉCOLE\\josé") != NULL &&
		   sms_lookup_find(&p, "école\\josé") == NULL,
		   "lookup: an unknown name has no entry; case folding is ASCII only");
		if (r)
			sms_lookup_free(&p);
		free(g);

		dup[0] = ulkp_entries[0];
		dup[1] = ulkp_entries[0];
		dup[1].name = "corp\\ALICE (ADMIN)";
		f.entries = dup;
		f.nentries = 2;
		refused(sms_lookup_to_text(&f, &text, &len, err, sizeof(err)), err, "appears twice",
				"lookup writer: refuses names that differ only in case");
		f = example_lookup();
		lkp_entries[0].name = "PC01$";
		refused(sms_lookup_to_text(&f, &text, &len, err, sizeof(err)), err, "not an SMS ID",
				"lookup writer: system entries must be SMS IDs");
		f = example_user_lookup();
		ulkp_entries[0].name = " padded";
		refused(sms_lookup_to_text(&f, &text, &len, err, sizeof(err)), err, "leading or trailing",
				"lookup writer: refuses a name with a leading space");
		f = example_lookup();
		lkp_entries[0].adverts = lkp_adv2;
		lkp_entries[0].nadverts = 1;
		lkp_entries[0].adverts[0] = "CEN0007";
		refused(sms_lookup_to_text(&f, &text, &len, err, sizeof(err)), err, "not an SMS ID",
				"lookup writer: refuses a bad advertisement ID");
		lkp_adv2[0] = "CEN00007";
	}

	/* package */
	{
		SmsPackageFile f = example_package();
		SmsPackageFile p;
		SmsPackageProgram dup[2];
		const char *other =
			"[smsdist]\nformat=package\nversion=1\npackage_id=CEN00002\nname=n\nsource_version=1\n"
			"sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nicon=../CEN00003.ICO\n";
		const char *noicon =
			"[smsdist]\nformat=package\nversion=1\npackage_id=CEN00002\nname=n\nsource_version=1\n"
			"sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nicon=none\n";

		const char *nohash =
			"[smsdist]\nformat=package\nversion=1\npackage_id=CEN00002\nname=n\nsource_version=1\n"
			"sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nicon=CEN00002.ICO\n";
		const char *hashonly =
			"[smsdist]\nformat=package\nversion=1\npackage_id=CEN00002\nname=n\nsource_version=1\n"
			"sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
			"icon_sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nicon=none\n";
		char	   *buf;
		size_t		len;

		refused(sms_package_parse(other, strlen(other), &p, err, sizeof(err)), err, "must be none or CEN00002.ICO",
				"package reader: refuses an icon that is not the package's own");
		refused(sms_package_parse(nohash, strlen(nohash), &p, err, sizeof(err)), err, "without icon_sha256",
				"package reader: refuses an icon without its hash");
		refused(sms_package_parse(hashonly, strlen(hashonly), &p, err, sizeof(err)), err, "without an icon",
				"package reader: refuses an icon hash without an icon");
		f.icon_sha256 = NULL;
		refused(sms_package_to_text(&f, &buf, &len, err, sizeof(err)), err, "needs its icon_sha256",
				"package writer: refuses an icon without its hash");
		f.icon_sha256 = sha_b;
		r = sms_package_parse(noicon, strlen(noicon), &p, err, sizeof(err));
		ok(r && !p.has_icon && p.product_version == NULL && p.manufacturer == NULL && p.nprograms == 0,
		   "package reader: icon=none, optional keys absent");
		if (r)
			sms_package_free(&p);
		dup[0] = pkg_programs[0];
		dup[1] = pkg_programs[0];
		f.programs = dup;
		refused(sms_package_to_text(&f, &text, &len, err, sizeof(err)), err, "appears twice",
				"package writer: refuses two programs with one name");
	}

	/* nal */
	{
		SmsNalFile	f = example_nal();
		SmsNalFile	p;
		const char *badserver =
			"[smsdist]\nformat=nal\nversion=1\npackage_id=CEN00002\nsource_version=3\n"
			"[location 1]\nsite=CEN\nserver=-DP1\npath=/srv\n";

		refused(sms_nal_parse(badserver, strlen(badserver), &p, err, sizeof(err)), err, "server name",
				"nal reader: refuses a server name starting with -");
		nal_locs[1].path = "/srv/sms/./SMS_PKGC";
		refused(sms_nal_to_text(&f, &text, &len, err, sizeof(err)), err, ". or .. components",
				"nal writer: refuses a path with a . component");
		f = example_nal();
		nal_locs[1] = nal_locs[0];
		refused(sms_nal_to_text(&f, &text, &len, err, sizeof(err)), err, "appears twice",
				"nal writer: refuses a location listed twice");
	}

	/* status */
	{
		SmsStatusFile f = example_status();
		SmsStatusFile p;
		const char *badsev =
			"[smsdist]\nformat=status\nversion=1\nmachine=CEN0001A\nsite=CEN\nsequence=1\n"
			"at=2026-03-03T12:05:09Z\nmessage_id=1\nseverity=fatal\ncomponent=x\ntext=\n";

		refused(sms_status_parse(badsev, strlen(badsev), &p, err, sizeof(err)), err, "info, warning or error",
				"status reader: refuses an unknown severity");
		f.sequence = INT64_C(10000000000);
		refused(sms_status_to_text(&f, &text, &len, err, sizeof(err)), err, "sequence",
				"status writer: refuses a sequence of 11 digits");
		f = example_status();
		f.text = "";
		f.advert_id = NULL;
		f.job_id = NULL;
		f.package_id = NULL;
		r = sms_status_to_text(&f, &text, &len, err, sizeof(err)) &&
			sms_status_parse(text, len, &p, err, sizeof(err));
		ok(r && status_equal(&f, &p), "status: round trip with empty text and no IDs");
		if (r)
			sms_status_free(&p);
		free(text);
		text = NULL;
		f = example_status();
		f.text = "\xff";
		refused(sms_status_to_text(&f, &text, &len, err, sizeof(err)), err, "UTF-8",
				"status writer: refuses text that is not UTF-8");
	}
}

/* ----------------------------------------------------------------
 * Bad input files
 * ----------------------------------------------------------------
 */
static bool
parse_as(const char *format, const char *buf, size_t len, char *err, size_t errlen)
{
	bool		r = false;

	if (strcmp(format, "pcm") == 0)
	{
		SmsPcmFile	f;

		if ((r = sms_pcm_parse(buf, len, &f, err, errlen)))
			sms_pcm_free(&f);
	}
	else if (strcmp(format, "offer") == 0)
	{
		SmsOfferFile f;

		if ((r = sms_offer_parse(buf, len, &f, err, errlen)))
			sms_offer_free(&f);
	}
	else if (strcmp(format, "install") == 0)
	{
		SmsInstallFile f;

		if ((r = sms_install_parse(buf, len, &f, err, errlen)))
			sms_install_free(&f);
	}
	else if (strcmp(format, "heartbeat") == 0)
	{
		SmsHeartbeatFile f;

		if ((r = sms_heartbeat_parse(buf, len, &f, err, errlen)))
			sms_heartbeat_free(&f);
	}
	else if (strcmp(format, "lookup") == 0)
	{
		SmsLookupFile f;

		if ((r = sms_lookup_parse(buf, len, &f, err, errlen)))
			sms_lookup_free(&f);
	}
	else if (strcmp(format, "package") == 0)
	{
		SmsPackageFile f;

		if ((r = sms_package_parse(buf, len, &f, err, errlen)))
			sms_package_free(&f);
	}
	else if (strcmp(format, "nal") == 0)
	{
		SmsNalFile	f;

		if ((r = sms_nal_parse(buf, len, &f, err, errlen)))
			sms_nal_free(&f);
	}
	else if (strcmp(format, "status") == 0)
	{
		SmsStatusFile f;

		if ((r = sms_status_parse(buf, len, &f, err, errlen)))
			sms_status_free(&f);
	}
	return r;
}

static const struct
{
	const char *file;
	const char *format;
	const char *message;
	const char *what;
}			bad_files[] =
{
	{"wrong-format.txt", "pcm", "not a \"pcm\" file", "a NAL file read as a PCM file"},
	{"version2.txt", "pcm", "version 2 of its format", "format version 2"},
	{"escape.txt", "pcm", "malformed escape", "a malformed %XX escape"},
	{"utf8.txt", "pcm", "not valid UTF-8", "a raw byte that is not UTF-8"},
	{"dupkey.txt", "pcm", "duplicate key \"package_id\"", "a key twice in one section"},
	{"dupsection.txt", "pcm", "duplicate section [job CEN00003]", "a job twice"},
	{"smsid.txt", "pcm", "not an SMS ID", "a lower-case machine SMS ID"},
	{"jobid.txt", "pcm", "the job ID is not an SMS ID", "a job section with a bad ID"},
	{"dotdot.txt", "pcm", ". or .. components", "a location with .."},
	{"crlf.txt", "pcm", "ends with CR", "CRLF line endings"},
	{"not-smsdist.txt", "pcm", "first section must be [smsdist]", "an INI file of another program"},
	{"missing-key.txt", "install", "has no collection_id key", "a missing required key"},
	{"local-time.txt", "offer", "the _utc key is false", "a UTC time marked _utc=false"},
	{"case-dup.txt", "lookup", "appears twice", "user names that differ only in case"},
	{"status-time.txt", "status", "not a UTC time", "a local time where UTC is required"},
	{"sha256.txt", "package", "64 lower-case hexadecimal", "a short SHA-256"},
	{"run-with.txt", "package", "must be administrative_rights or user_rights", "an unknown run mode"},
};

static void
test_bad_files(void)
{
	size_t		i;

	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++)
	{
		char		name[256];
		char		err[512] = "";
		size_t		len = 0;
		char	   *buf;
		bool		r;

		snprintf(name, sizeof(name), "bad/%s", bad_files[i].file);
		buf = slurp(golden_dir, name, &len);
		r = buf == NULL || parse_as(bad_files[i].format, buf, len, err, sizeof(err));
		snprintf(name, sizeof(name), "bad file %s (%s reader): refuses %s",
				 bad_files[i].file, bad_files[i].format, bad_files[i].what);
		refused(buf == NULL || r, err, bad_files[i].message, name);
		free(buf);
	}
}

/* Mutated golden files: every parser either accepts or explains. */
static void
test_mutations(void)
{
	static const char *const files[] = {"pcm.txt", "offer.txt", "lookup-user.txt", "package.txt",
	"nal.txt", "status.txt", "install.txt", "heartbeat.txt"};
	static const char *const formats[] = {"pcm", "offer", "lookup", "package", "nal", "status", "install", "heartbeat"};
	static const char bytes[] = "\n=[]%;,.0Z\xff\xc3 aA";
	uint32_t	seed = 777;
	int			f,
				i,
				silent = 0,
				runs = 0;

	for (f = 0; f < (int) (sizeof(files) / sizeof(files[0])); f++)
	{
		size_t		len = 0;
		char	   *g = slurp(golden_dir, files[f], &len);

		if (g == NULL)
		{
			silent++;
			continue;
		}
		for (i = 0; i < 300; i++)
		{
			char	   *m = malloc(len + 1);
			char		err[512];
			int			k;

			memcpy(m, g, len + 1);
			for (k = 0; k < 3; k++)
			{
				seed = seed * 1103515245u + 12345u;
				m[(seed >> 8) % len] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
			}
			err[0] = '\0';
			if (!parse_as(formats[f], m, len, err, sizeof(err)) && err[0] == '\0')
				silent++;
			runs++;
			free(m);
		}
		free(g);
	}
	ok(silent == 0, "mutations: %d damaged golden files are accepted or refused with a message", runs);
}

/* ----------------------------------------------------------------
 * Files
 * ----------------------------------------------------------------
 */
static void
test_files(void)
{
	char		dir[4096];
	char		path[8192];
	char		err[512];
	char	   *buf = NULL;
	size_t		len = 0;
	struct stat st;
	mode_t		old;
	bool		r;
	int			fd;

	snprintf(dir, sizeof(dir), "%s/box", scratch_dir);
	mkdir(dir, 0755);

	old = umask(077);
	r = sms_fmt_write_file(dir, "CEN0001A", "hello\n", 6, err, sizeof(err));
	umask(old);
	if (!r)
		diag("%s", err);
	snprintf(path, sizeof(path), "%s/CEN0001A", dir);
	ok(r && stat(path, &st) == 0 && (st.st_mode & 07777) == 0644,
	   "write_file: writes the file with mode 0644 even under umask 077");
	ok(!has_temp_files(dir), "write_file: leaves no temporary file");
	r = sms_fmt_read_file(dir, "CEN0001A", &buf, &len, err, sizeof(err));
	ok(r && len == 6 && memcmp(buf, "hello\n", 6) == 0 && buf[6] == '\0',
	   "read_file: reads back the bytes, NUL-terminated");
	free(buf);
	buf = NULL;
	r = sms_fmt_write_file(dir, "CEN0001A", "bye\n", 4, err, sizeof(err)) &&
		sms_fmt_read_file(dir, "CEN0001A", &buf, &len, err, sizeof(err));
	ok(r && len == 4 && memcmp(buf, "bye\n", 4) == 0, "write_file: replaces an existing file");
	free(buf);
	buf = NULL;

	/* a stale temporary of a crashed process with our pid is replaced */
	snprintf(path, sizeof(path), "%s/.CEN0001B.tmp.%ld", dir, (long) getpid());
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	r = sms_fmt_write_file(dir, "CEN0001B", "x\n", 2, err, sizeof(err));
	ok(r && !has_temp_files(dir), "write_file: replaces a stale temporary file of its own pid");

	refused(sms_fmt_write_file(dir, "a/b", "x", 1, err, sizeof(err)), err, "invalid file name",
			"write_file: refuses a name with /");
	refused(sms_fmt_write_file(dir, "a..b", "x", 1, err, sizeof(err)), err, "invalid file name",
			"write_file: refuses a name containing ..");
	refused(sms_fmt_write_file(dir, ".hidden", "x", 1, err, sizeof(err)), err, "invalid file name",
			"write_file: refuses a name starting with .");
	refused(sms_fmt_write_file(dir, "a\nb", "x", 1, err, sizeof(err)), err, "invalid file name",
			"write_file: refuses a name with a control character");
	refused(sms_fmt_write_file(dir, "", "x", 1, err, sizeof(err)), err, "invalid file name",
			"write_file: refuses an empty name");
	snprintf(path, sizeof(path), "%s/missing", dir);
	refused(sms_fmt_write_file(path, "x", "x", 1, err, sizeof(err)), err, "could not open directory",
			"write_file: reports a missing directory");

	/* reading: links and special files are refused */
	snprintf(path, sizeof(path), "%s/link", dir);
	if (symlink("CEN0001A", path) != 0)
		diag("symlink: %s", strerror(errno));
	refused(sms_fmt_read_file(dir, "link", &buf, &len, err, sizeof(err)), err, "symbolic link",
			"read_file: refuses a symbolic link");
	snprintf(path, sizeof(path), "%s/sub", dir);
	mkdir(path, 0755);
	refused(sms_fmt_read_file(dir, "sub", &buf, &len, err, sizeof(err)), err, "directory",
			"read_file: refuses a directory");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	if (mkfifo(path, 0644) != 0)
		diag("mkfifo: %s", strerror(errno));
	refused(sms_fmt_read_file(dir, "fifo", &buf, &len, err, sizeof(err)), err, "special file",
			"read_file: refuses a FIFO without blocking on it");
	refused(sms_fmt_read_file(dir, "../box/CEN0001A", &buf, &len, err, sizeof(err)), err,
			"invalid file name", "read_file: refuses a name that climbs out");
	refused(sms_fmt_read_file(dir, "nothere", &buf, &len, err, sizeof(err)), err, "No such file",
			"read_file: reports a missing file");
	snprintf(path, sizeof(path), "%s/huge", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, (off_t) SMS_FMT_MAX_FILE + 1) != 0)
		diag("cannot make the sparse file");
	if (fd >= 0)
		close(fd);
	refused(sms_fmt_read_file(dir, "huge", &buf, &len, err, sizeof(err)), err, "larger than",
			"read_file: refuses a file over 64 MB");
	unlink(path);

	/* the whole path: a typed writer, the atomic write, the reader */
	{
		SmsPcmFile	f = example_pcm();
		SmsPcmFile	p;
		char		name[SMS_FMT_NAME_BUFLEN];
		char	   *text = NULL;

		r = sms_pcm_to_text(&f, &text, &len, err, sizeof(err)) &&
			sms_fmt_file_name(SMS_FILE_PCM, f.machine, 0, name, sizeof(name), err, sizeof(err)) &&
			sms_fmt_write_file(dir, name, text, len, err, sizeof(err)) &&
			sms_fmt_read_file(dir, "CEN0001A", &buf, &len, err, sizeof(err)) &&
			sms_pcm_parse(buf, len, &p, err, sizeof(err));
		if (!r)
			diag("%s", err);
		ok(r && pcm_equal(&f, &p), "files: PCM written to pcins.box and read back by the agent's reader");
		if (r)
			sms_pcm_free(&p);
		free(text);
		free(buf);
		buf = NULL;
	}
}

/* ----------------------------------------------------------------
 * Signatures (sms_signature.h)
 * ----------------------------------------------------------------
 */
static SmsSigner *
test_signer(const char *name)
{
	size_t		len;
	char	   *pem = slurp(golden_dir, name, &len);
	char		err[512] = "";
	SmsSigner  *s = pem ? sms_sig_signer_from_pem(pem, len, err, sizeof(err)) : NULL;

	if (s == NULL)
	{
		diag("could not load test key %s: %s", name, err);
		exit(2);
	}
	free(pem);
	return s;
}

static SmsSigKeyring *
test_ring(const char *name)
{
	size_t		len;
	char	   *pem = slurp(golden_dir, name, &len);
	char		err[512] = "";
	SmsSigKeyring *r = sms_sig_keyring_new();

	if (pem == NULL || !sms_sig_keyring_add_pem(r, pem, len, name, err, sizeof(err)))
	{
		diag("could not load test public key %s: %s", name, err);
		exit(2);
	}
	free(pem);
	return r;
}

/* verify buf (a copy, so that nothing reads past len) and keep the message */
static bool
verify_copy(const SmsSigKeyring *r, const char *buf, size_t len, size_t *signed_len, char *err, size_t errlen)
{
	char	   *copy = malloc(len ? len : 1);
	bool		v;

	memcpy(copy, buf, len);
	err[0] = '\0';
	v = sms_sig_verify(r, copy, len, signed_len, err, errlen);
	free(copy);
	return v;
}

static void
test_signatures(void)
{
	SmsSigner  *site = test_signer("keys/site-key.pem");
	SmsSigner  *other = test_signer("keys/other-key.pem");
	SmsSigKeyring *ring = write_golden ? NULL : test_ring("keys/site-key.pub");
	SmsPcmFile	ex = example_pcm();
	SmsHeartbeatFile hb = {"CEN", 1772540709, 60};
	char	   *text = NULL,
			   *plain = NULL;
	size_t		len,
				plen,
				slen = 0;
	char		err[512] = "";
	bool		r;

	/* the signed golden files */
	r = sms_pcm_to_text(&ex, &text, &len, err, sizeof(err)) && sms_sig_append(site, &text, &len, err, sizeof(err));
	if (!r)
		diag("%s", err);
	ok(r && matches_golden("signed-pcm.txt", text, len), "signature: the example PCM file signed with the test key is signed-pcm.txt");
	free(text);
	text = NULL;
	r = sms_heartbeat_to_text(&hb, &text, &len, err, sizeof(err)) && sms_sig_append(site, &text, &len, err, sizeof(err));
	ok(r && matches_golden("signed-heartbeat.txt", text, len), "signature: the example heartbeat signed is signed-heartbeat.txt");
	free(text);
	text = NULL;
	if (write_golden)
	{
		sms_sig_signer_free(site);
		sms_sig_signer_free(other);
		return;
	}

	ok(strcmp(sms_sig_signer_key_id(site), sms_sig_keyring_key_id(ring, 0)) == 0 &&
	   strlen(sms_sig_signer_key_id(site)) == SMS_SIG_KEY_ID_LEN,
	   "signature: the key ID of the private key and of its public key agree (%s)", sms_sig_signer_key_id(site));

	/* verify, and the signed part is exactly the document */
	text = slurp(golden_dir, "signed-pcm.txt", &len);
	plain = slurp(golden_dir, "pcm.txt", &plen);
	r = text && plain && verify_copy(ring, text, len, &slen, err, sizeof(err));
	if (!r)
		diag("%s", err);
	ok(r && slen == plen + 1 && memcmp(text, plain, plen) == 0 && text[plen] == '\n',
	   "signature: signed-pcm.txt verifies; it signs pcm.txt and an empty line");
	ok(len == plen + 1 + SMS_SIG_TRAILER_LEN, "signature: the [signature] section is %d bytes", SMS_SIG_TRAILER_LEN);
	{
		SmsPcmFile	back;

		r = sms_pcm_parse(text, slen, &back, err, sizeof(err));
		ok(r && pcm_equal(&ex, &back), "signature: the signed part parses back to every field");
		if (r)
			sms_pcm_free(&back);
		/* an old reader that does not verify ignores the section */
		r = sms_pcm_parse(text, len, &back, err, sizeof(err));
		ok(r && pcm_equal(&ex, &back), "signature: the whole signed file parses too (the section is ignored by readers)");
		if (r)
			sms_pcm_free(&back);
	}

	/* the attacker's side */
	{
		char	   *bad = malloc(len + 200);
		char	   *p;
		size_t		blen;

		/* a changed command line */
		memcpy(bad, text, len);
		p = strstr(bad, "command_line=setup.exe");
		memcpy(p + strlen("command_line="), "evilxx.exe", 10);
		refused(verify_copy(ring, bad, len, &slen, err, sizeof(err)), err,
				"does not verify with site key", "signature: a changed command line is refused: the signature does not verify");
		/* one flipped byte of the signature */
		memcpy(bad, text, len);
		bad[len - 10] = bad[len - 10] == 'A' ? 'B' : 'A';
		refused(verify_copy(ring, bad, len, &slen, err, sizeof(err)), err,
				"does not verify", "signature: a changed signature is refused");
		/* stripped */
		refused(verify_copy(ring, text, plen, &slen, err, sizeof(err)), err,
				"it is not signed", "signature: a file without [signature] is refused as not signed");
		/* truncated in the signature, and without its last line feed */
		refused(verify_copy(ring, text, len - 21, &slen, err, sizeof(err)), err,
				"truncated", "signature: a file cut in its signature is refused as truncated");
		memcpy(bad, text, len - 21);
		bad[len - 21] = '\n';
		refused(verify_copy(ring, bad, len - 20, &slen, err, sizeof(err)), err,
				"not 88 of base64", "signature: a short signature is refused");
		/* text after the section */
		memcpy(bad, text, len);
		memcpy(bad + len, "[job CEN0000F]\ncommand_line=x\n", 31);
		refused(verify_copy(ring, bad, len + 31, &slen, err, sizeof(err)), err,
				"the signature must end the file", "signature: sections after [signature] are refused");
		/* a second [signature] section the attacker appends (copied from another file) */
		memcpy(bad, text, len);
		memcpy(bad + len, text + plen + 1, SMS_SIG_TRAILER_LEN);
		refused(verify_copy(ring, bad, len + SMS_SIG_TRAILER_LEN, &slen, err, sizeof(err)), err,
				"does not verify", "signature: a second [signature] section is refused");
		/* a key_id that is not 16 hex */
		memcpy(bad, text, len);
		p = bad + plen + 1 + 12 + 7;
		p[0] = 'G';
		refused(verify_copy(ring, bad, len, &slen, err, sizeof(err)), err,
				"key_id is not 16 lower-case hex digits", "signature: a malformed key_id is refused");
		/* signed by another key */
		blen = plen;
		free(bad);
		bad = malloc(plen);
		memcpy(bad, plain, plen);
		r = sms_sig_append(other, &bad, &blen, err, sizeof(err));
		refused(!r || verify_copy(ring, bad, blen, &slen, err, sizeof(err)), err,
				"which is not a site key this machine trusts", "signature: a file signed by another site's key is refused, naming the key");
		/* ... with our key ID put in front of another key's signature */
		memcpy(bad + plen + 1 + 12 + 7, sms_sig_signer_key_id(site), SMS_SIG_KEY_ID_LEN);
		refused(verify_copy(ring, bad, blen, &slen, err, sizeof(err)), err,
				"does not verify with site key", "signature: another key's signature under the site's key ID does not verify");
		/* an agent that trusts both keys (a rotation) accepts either */
		{
			SmsSigKeyring *both = test_ring("keys/site-key.pub");
			size_t		olen;
			char	   *opem = slurp(golden_dir, "keys/other-key.pub", &olen);
			size_t		blen2 = plen;
			char	   *b2 = malloc(plen);

			memcpy(b2, plain, plen);
			r = sms_sig_keyring_add_pem(both, opem, olen, "other", err, sizeof(err)) &&
				sms_sig_append(other, &b2, &blen2, err, sizeof(err)) &&
				verify_copy(both, b2, blen2, &slen, err, sizeof(err)) &&
				verify_copy(both, text, len, &slen, err, sizeof(err));
			ok(r && sms_sig_keyring_count(both) == 2, "signature: with the old and the new key installed, files of either verify");
			sms_sig_keyring_free(both);
			free(opem);
			free(b2);
		}
		free(bad);
	}
	ok(sms_sig_verify(NULL, text, len, &slen, err, sizeof(err)) == false && strstr(err, "0 installed") != NULL,
	   "signature: no key installed: nothing verifies");

	/* key files */
	{
		SmsSigKeyring *k = sms_sig_keyring_new();
		char		path[4096];
		bool		created = false;
		SmsSigner  *made;
		char	   *pub;
		struct stat st;
		size_t		klen;
		char	   *priv = slurp(golden_dir, "keys/site-key.pem", &klen);

		refused(sms_sig_keyring_add_pem(k, "hello\n", 6, "junk", err, sizeof(err)), err,
				"holds no PEM public key", "keys: a text without a public key is refused");
		refused(sms_sig_keyring_add_pem(k, priv, klen, "the private key", err, sizeof(err)), err,
				"holds no PEM public key", "keys: a private key is not taken as a public key");
		free(priv);
		snprintf(path, sizeof(path), "%s/site.pem", scratch_dir);
		r = sms_sig_create_key(path, &created, err, sizeof(err));
		ok(r && created && stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
		   "keys: a new site key is created with mode 0600");
		r = sms_sig_create_key(path, &created, err, sizeof(err));
		ok(r && !created, "keys: an existing key is left alone");
		made = sms_sig_signer_load(path, err, sizeof(err));
		pub = made ? sms_sig_signer_public_pem(made, err, sizeof(err)) : NULL;
		ok(pub != NULL && sms_sig_keyring_add_pem(k, pub, strlen(pub), "made", err, sizeof(err)) &&
		   strcmp(sms_sig_keyring_key_id(k, 0), sms_sig_signer_key_id(made)) == 0,
		   "keys: its public key (PEM) loads into a keyring with the same key ID");
		chmod(path, 0640);
		refused(sms_sig_signer_load(path, err, sizeof(err)) != NULL, err,
				"must be 0600 or stricter", "keys: a private key that the group may read is refused");
		snprintf(path, sizeof(path), "%s/site.pub", scratch_dir);
		{
			FILE	   *f = fopen(path, "w");

			fputs(pub ? pub : "", f);
			fclose(f);
		}
		chmod(path, 0666);
		refused(sms_sig_keyring_load(k, path, err, sizeof(err)), err,
				"may be written by group or others", "keys: a public key file that others may write is refused");
		chmod(path, 0644);
		ok(sms_sig_keyring_load(k, path, err, sizeof(err)) && sms_sig_keyring_count(k) == 1,
		   "keys: a public key file that only its owner writes loads (a key held twice counts once)");
		free(pub);
		sms_sig_signer_free(made);
		sms_sig_keyring_free(k);
	}
	free(text);
	free(plain);
	sms_sig_keyring_free(ring);
	sms_sig_signer_free(site);
	sms_sig_signer_free(other);
}

/* A 16x16 icon of one image: a BMP DIB (bmp) or a PNG (!bmp). */
static size_t
make_icon(unsigned char *buf, size_t cap, bool bmp)
{
	size_t		img = bmp ? 40 + 16 * 16 * 4 + 16 * 4 : 67;
	unsigned char *e = buf + 6;
	unsigned char *d = buf + 22;

	memset(buf, 0, cap);
	buf[2] = 1;					/* type: icon */
	buf[4] = 1;					/* one image */
	e[0] = 16;
	e[1] = 16;
	e[4] = 1;
	e[6] = 32;
	e[8] = img & 0xff;
	e[9] = (img >> 8) & 0xff;
	e[12] = 22;
	if (bmp)
	{
		d[0] = 40;				/* BITMAPINFOHEADER */
		d[4] = 16;
		d[8] = 32;				/* twice the height: image and mask */
		d[12] = 1;				/* planes */
		d[14] = 32;
	}
	else
		memcpy(d, "\x89PNG\r\n\x1a\n", 8);
	return 22 + img;
}

static void
test_icons(void)
{
	static unsigned char buf[SMS_FMT_ICON_MAX_BYTES + 16];
	char		err[512];
	size_t		len;

	len = make_icon(buf, sizeof(buf), true);
	ok(sms_icon_check(buf, len, err, sizeof(err)), "icon: a 16x16 BMP icon is an icon");
	refused(sms_icon_check(buf, len - 1, err, sizeof(err)), err, "outside the file",
			"icon: an image cut short is refused");
	len = make_icon(buf, sizeof(buf), false);
	ok(sms_icon_check(buf, len, err, sizeof(err)), "icon: a PNG icon is an icon");
	refused(sms_icon_check(buf + 22, len - 22, err, sizeof(err)), err, "it is a PNG image",
			"icon: a PNG file renamed .ico is refused");
	len = make_icon(buf, sizeof(buf), true);
	buf[2] = 2;
	refused(sms_icon_check(buf, len, err, sizeof(err)), err, "no icon header",
			"icon: a cursor (type 2) is refused");
	len = make_icon(buf, sizeof(buf), true);
	buf[4] = 0;
	refused(sms_icon_check(buf, len, err, sizeof(err)), err, "0 images", "icon: no image is refused");
	len = make_icon(buf, sizeof(buf), true);
	buf[4] = 200;
	refused(sms_icon_check(buf, len, err, sizeof(err)), err, "200 images", "icon: too many images are refused");
	len = make_icon(buf, sizeof(buf), true);
	buf[4] = 2;
	buf[6 + 16 + 12] = 0xff;
	buf[6 + 16 + 13] = 0xff;
	buf[6 + 16 + 8] = 1;
	refused(sms_icon_check(buf, len, err, sizeof(err)), err, "image 1 overlaps the directory",
			"icon: an image over the directory is refused");
	len = make_icon(buf, sizeof(buf), true);
	memset(buf + 22, 'x', 16);
	refused(sms_icon_check(buf, len, err, sizeof(err)), err, "neither a BMP nor a PNG",
			"icon: an image of another kind is refused");
	refused(sms_icon_check((const unsigned char *) "hello", 5, err, sizeof(err)), err, "no icon header",
			"icon: random bytes are refused");
	len = make_icon(buf, sizeof(buf), true);
	refused(sms_icon_check(buf, SMS_FMT_ICON_MAX_BYTES + 1, err, sizeof(err)), err, "larger than 262144",
			"icon: a file over the size limit is refused");
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-golden") == 0)
	{
		write_golden = true;
		golden_dir = argv[2];
		scratch_dir = argv[2];
		test_golden();
		test_signatures();
		printf("1..%d\n", ntests);
		return nfailed != 0;
	}
	if (argc != 3)
	{
		fprintf(stderr, "usage: %s <golden dir> <scratch dir>\n       %s --write-golden <dir>\n",
				argv[0], argv[0]);
		return 2;
	}
	golden_dir = argv[1];
	scratch_dir = argv[2];

	test_golden();
	test_older_files();
	test_deterministic();
	test_common();
	test_values();
	test_typed();
	test_bad_files();
	test_mutations();
	test_files();
	test_signatures();
	test_icons();

	printf("1..%d\n", ntests);
	if (nfailed != 0)
		diag("%d of %d tests failed", nfailed, ntests);
	return nfailed != 0;
}
