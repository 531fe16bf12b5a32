/*-------------------------------------------------------------------------
 *
 * pg_shim.c
 *	  Just enough of the PostgreSQL server for the fuzz targets that run
 *	  server code outside a server.
 *
 * The code under test is compiled unchanged against the server headers
 * (pg_config --includedir-server).  What it calls comes from three places:
 * libpgcommon and libpgport (StringInfo, psprintf, the UTF-8 routines,
 * pg_tolower, snprintf: the same code the server links), and this file,
 * which stands in for the backend:
 *
 *	memory		palloc and friends are malloc'd chunks on one list, so that
 *				shim_reset_memory frees what one input allocated (the
 *				server frees it with the transaction's memory context) and
 *				LeakSanitizer reports only real leaks.  An allocation over
 *				MaxAllocSize without MCXT_ALLOC_HUGE is an ERROR, as in the
 *				server.
 *	errors		ereport/elog at ERROR or above siglongjmp to the innermost
 *				PG_TRY, as the server does; shim_try is the outermost one.
 *				The error's SQLSTATE and message are kept for the target to
 *				check.  Lower levels are ignored.
 *	encoding	the database encoding is UTF-8.
 *	types		getTypeInputInfo/OidInputFunctionCall for the types of the
 *				query-rule attributes: text accepts anything, integer and
 *				bigint accept what int4in/int8in accept (optional spaces and
 *				sign, decimal digits, in range), inet accepts an IPv4 or
 *				IPv6 address with an optional /bits, timestamptz accepts
 *				anything that starts with a digit or is infinity, -infinity,
 *				now, today, epoch.  These are approximations: they decide
 *				only which values reach the generated SQL, and the property
 *				checked there (every value is one quoted literal) does not
 *				depend on the value.
 *	quoting		quote_literal_cstr is PostgreSQL's (utils/adt/quote.c,
 *				copied), because the safety of the generated SQL rests on it.
 *
 * Anything else the code under test refers to only from functions the
 * targets never call is dropped by the linker (-ffunction-sections,
 * --gc-sections).  A function the linker cannot drop but a target must
 * never reach is defined here to abort(), so reaching it is a crash.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "pg_shim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/acl.h"
#include "storage/fd.h"
#include "utils/hsearch.h"

/*
 * The package limits the code under test reads, at their defaults: in a
 * server they are settings that src/core/smsdist.c defines and registers.
 */
int			sms_max_package_files = 100000;
int			sms_max_package_size_mb = 65536;
int			sms_max_path_depth = 64;
int			sms_max_path_length = 1024;
int			sms_max_manifest_size_kb = 65536;
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include <time.h>
#include "inflate.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#define NOT_REACHED(what) \
	do { fprintf(stderr, "pg_shim: %s is not available in a fuzz target\n", what); abort(); } while (0)

/* ----------------------------------------------------------------
 * Memory
 * ----------------------------------------------------------------
 */
typedef struct Chunk
{
	struct Chunk *prev;
	struct Chunk *next;
	Size		size;
	/* 16-byte alignment of the payload, as palloc's MAXALIGN or better */
	char		pad[8];
} Chunk;

static Chunk chunks = {&chunks, &chunks, 0};

MemoryContext CurrentMemoryContext = NULL;

static void *
chunk_alloc(Size size, int flags)
{
	Chunk	   *c;

	if (!(flags & MCXT_ALLOC_HUGE) ? !AllocSizeIsValid(size) : !AllocHugeSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	c = (flags & MCXT_ALLOC_ZERO) ? calloc(1, sizeof(Chunk) + size) : malloc(sizeof(Chunk) + size);
	if (c == NULL)
	{
		if (flags & MCXT_ALLOC_NO_OOM)
			return NULL;
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	c->size = size;
	c->next = chunks.next;
	c->prev = &chunks;
	chunks.next->prev = c;
	chunks.next = c;
	return c + 1;
}

void
shim_reset_memory(void)
{
	while (chunks.next != &chunks)
	{
		Chunk	   *c = chunks.next;

		chunks.next = c->next;
		free(c);
	}
	chunks.prev = &chunks;
}

void *
palloc(Size size)
{
	return chunk_alloc(size, 0);
}

void *
palloc0(Size size)
{
	return chunk_alloc(size, MCXT_ALLOC_ZERO);
}

void *
palloc_extended(Size size, int flags)
{
	return chunk_alloc(size, flags);
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return chunk_alloc(size, 0);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return chunk_alloc(size, MCXT_ALLOC_ZERO);
}

void *
MemoryContextAllocHuge(MemoryContext context, Size size)
{
	return chunk_alloc(size, MCXT_ALLOC_HUGE);
}

void
pfree(void *p)
{
	Chunk	   *c = (Chunk *) p - 1;

	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

static void *
chunk_realloc(void *p, Size size, int flags)
{
	Chunk	   *c = (Chunk *) p - 1;
	Chunk	   *n;

	if (!(flags & MCXT_ALLOC_HUGE) ? !AllocSizeIsValid(size) : !AllocHugeSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	n = realloc(c, sizeof(Chunk) + size);
	if (n == NULL)
		n = c;					/* still valid: put it back, then fail */
	n->next = chunks.next;
	n->prev = &chunks;
	chunks.next->prev = n;
	chunks.next = n;
	if (n == c && size > c->size)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	n->size = size;
	return n + 1;
}

void *
repalloc(void *p, Size size)
{
	return chunk_realloc(p, size, 0);
}

void *
repalloc_huge(void *p, Size size)
{
	return chunk_realloc(p, size, MCXT_ALLOC_HUGE);
}

char *
MemoryContextStrdup(MemoryContext context, const char *s)
{
	return pstrdup(s);
}

char *
pstrdup(const char *s)
{
	return pnstrdup(s, strlen(s));
}

char *
pnstrdup(const char *s, Size len)
{
	char	   *r;

	len = strnlen(s, len);
	r = palloc(len + 1);
	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

/*
 * Memory contexts: one dummy, since all memory is on the one list above
 * and freed per input; deleting a context frees nothing earlier than the
 * server would have (the input's end).
 */
static MemoryContextData dummy_context;

/* contexts are never reset here: what is registered is freed by its owner */
void
MemoryContextRegisterResetCallback(MemoryContext context, MemoryContextCallback *cb)
{
}

MemoryContext
AllocSetContextCreateInternal(MemoryContext parent, const char *name,
							  Size minContextSize, Size initBlockSize, Size maxBlockSize)
{
	return &dummy_context;
}

void
MemoryContextDelete(MemoryContext context)
{
}

/* ----------------------------------------------------------------
 * Errors
 * ----------------------------------------------------------------
 */
sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;
volatile sig_atomic_t InterruptPending = false;

int			shim_error_code;
char		shim_error_message[1024];

static int	cur_level;
static int	cur_code;
static char cur_message[1024];

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;
	cur_level = elevel;
	cur_code = ERRCODE_INTERNAL_ERROR;
	cur_message[0] = '\0';
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

int
errcode(int sqlerrcode)
{
	cur_code = sqlerrcode;
	return 0;
}

int
errcode_for_file_access(void)
{
	cur_code = ERRCODE_IO_ERROR;
	return 0;
}

static void
set_message(const char *fmt, va_list ap)
{
	vsnprintf(cur_message, sizeof(cur_message), fmt, ap);
}

int
errmsg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	set_message(fmt, ap);
	va_end(ap);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	set_message(fmt, ap);
	va_end(ap);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	return 0;
}

int
errdetail_internal(const char *fmt,...)
{
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (cur_level >= FATAL)
	{
		fprintf(stderr, "FATAL at %s:%d: %s\n", filename, lineno, cur_message);
		abort();
	}
	shim_error_code = cur_code;
	snprintf(shim_error_message, sizeof(shim_error_message), "%s", cur_message);
	if (PG_exception_stack == NULL)
	{
		fprintf(stderr, "ERROR outside any PG_TRY at %s:%d: %s\n", filename, lineno, cur_message);
		abort();
	}
	siglongjmp(*PG_exception_stack, 1);
}

void
pg_re_throw(void)
{
	if (PG_exception_stack == NULL)
		abort();
	siglongjmp(*PG_exception_stack, 1);
}

void
FlushErrorState(void)
{
}

void
ProcessInterrupts(void)
{
	/* InterruptPending is never set here */
	abort();
}

bool
shim_try(void (*fn) (void *arg), void *arg)
{
	sigjmp_buf	jb;
	sigjmp_buf *volatile save = PG_exception_stack;

	if (sigsetjmp(jb, 0) != 0)
	{
		PG_exception_stack = save;
		error_context_stack = NULL;
		return false;
	}
	PG_exception_stack = &jb;
	shim_error_code = 0;
	shim_error_message[0] = '\0';
	fn(arg);
	PG_exception_stack = save;
	return true;
}

/* ----------------------------------------------------------------
 * Encoding: the database encoding is UTF-8
 * ----------------------------------------------------------------
 */
int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

bool
pg_verifymbstr(const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(PG_UTF8, mbstr, len) == len)
		return true;
	if (!noError)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding \"UTF8\"")));
	return false;
}

bool
pg_verify_mbstr(int encoding, const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(encoding, mbstr, len) == len)
		return true;
	if (!noError)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding %d", encoding)));
	return false;
}

int
pg_mblen(const char *mbstr)
{
	return pg_utf_mblen((const unsigned char *) mbstr);
}

/* ----------------------------------------------------------------
 * Types of the query-rule attributes
 * ----------------------------------------------------------------
 */
void
getTypeInputInfo(Oid type, Oid *typInput, Oid *typIOParam)
{
	*typInput = type;			/* OidInputFunctionCall dispatches on it */
	*typIOParam = type;
}

static bool
int_in(const char *s, int64 min, int64 max)
{
	const char *p = s;
	bool		neg = false;
	__int128	v = 0;
	int			nd = 0;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '+' || *p == '-')
		neg = (*p++ == '-');
	while (isdigit((unsigned char) *p))
	{
		v = v * 10 + (*p++ - '0');
		if (v > (__int128) max + 1)
			return false;
		nd++;
	}
	while (isspace((unsigned char) *p))
		p++;
	if (nd == 0 || *p != '\0')
		return false;
	if (neg)
		v = -v;
	return v >= min && v <= max;
}

static bool
inet_in_ok(const char *s)
{
	char		buf[64];
	const char *slash = strchr(s, '/');
	size_t		alen = slash ? (size_t) (slash - s) : strlen(s);
	unsigned char addr[16];
	int			family;

	if (alen >= sizeof(buf))
		return false;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		family = 32;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		family = 128;
	else
		return false;
	if (slash)
		return int_in(slash + 1, 0, family) && isdigit((unsigned char) slash[1]);
	return true;
}

static bool
timestamptz_in_ok(const char *s)
{
	return isdigit((unsigned char) s[0]) ||
		strcmp(s, "infinity") == 0 || strcmp(s, "-infinity") == 0 ||
		strcmp(s, "now") == 0 || strcmp(s, "today") == 0 || strcmp(s, "epoch") == 0;
}

Datum
OidInputFunctionCall(Oid functionId, char *str, Oid typioparam, int32 typmod)
{
	bool		ok;

	switch (functionId)
	{
		case TEXTOID:
			ok = true;
			break;
		case INT4OID:
			ok = int_in(str, PG_INT32_MIN, PG_INT32_MAX);
			break;
		case INT8OID:
			ok = int_in(str, PG_INT64_MIN, PG_INT64_MAX);
			break;
		case INETOID:
			ok = inet_in_ok(str);
			break;
		case TIMESTAMPTZOID:
			ok = timestamptz_in_ok(str);
			break;
		default:
			fprintf(stderr, "OidInputFunctionCall: type %u not in the shim\n", functionId);
			abort();
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %u: \"%s\"", functionId, str)));
	return (Datum) 0;
}

/*
 * quote_literal_cstr, from PostgreSQL's src/backend/utils/adt/quote.c
 * (PostgreSQL license): a string literal, E'' when it holds a backslash.
 */
char *
quote_literal_cstr(const char *rawstr)
{
	size_t		len = strlen(rawstr);
	char	   *result = palloc(len * 2 + 3 + 1);
	char	   *dst = result;
	const char *s;

	for (s = rawstr; s < rawstr + len; s++)
	{
		if (*s == '\\')
		{
			*dst++ = ESCAPE_STRING_SYNTAX;
			break;
		}
	}
	*dst++ = '\'';
	for (s = rawstr; s < rawstr + len; s++)
	{
		if (SQL_STR_DOUBLE(*s, true))
			*dst++ = *s;
		*dst++ = *s;
	}
	*dst++ = '\'';
	*dst = '\0';
	return result;
}

/* ----------------------------------------------------------------
 * Referenced by the SQL-callable wrappers, which no target calls
 * ----------------------------------------------------------------
 */
text *
cstring_to_text(const char *s)
{
	abort();
}

char *
text_to_cstring(const text *t)
{
	abort();
}

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	abort();
}

/* ----------------------------------------------------------------
 * Lists (nodes/pg_list.h): lappend only, as PostgreSQL 15 lays them out
 * ----------------------------------------------------------------
 */
List *
lappend(List *list, void *datum)
{
	if (list == NIL)
	{
		list = palloc(offsetof(List, initial_elements) + 4 * sizeof(ListCell));
		list->type = T_List;
		list->length = 0;
		list->max_length = 4;
		list->elements = list->initial_elements;
	}
	else if (list->length == list->max_length)
	{
		int			newmax = list->max_length * 2;
		ListCell   *e = palloc(newmax * sizeof(ListCell));

		memcpy(e, list->elements, list->length * sizeof(ListCell));
		if (list->elements != list->initial_elements)
			pfree(list->elements);
		list->elements = e;
		list->max_length = newmax;
	}
	list->elements[list->length++].ptr_value = datum;
	return list;
}

/* ----------------------------------------------------------------
 * Referenced by the tar writer, the delta writer and the SQL-callable
 * functions of package_delta.c and file_util.c, which no target
 * calls: reaching one is a crash, never a silent success.
 * ----------------------------------------------------------------
 */
ResourceOwner CurrentResourceOwner = NULL;
int			MyProcPid = 0;


ResourceOwner
ResourceOwnerCreate(ResourceOwner parent, const char *name)
{
	NOT_REACHED("ResourceOwnerCreate");
}

void
ResourceOwnerRelease(ResourceOwner owner, ResourceReleasePhase phase,
					 bool isCommit, bool isTopLevel)
{
	NOT_REACHED("ResourceOwnerRelease");
}

void
ResourceOwnerDelete(ResourceOwner owner)
{
	NOT_REACHED("ResourceOwnerDelete");
}

/* file_util.c's directory listings and tree removal */
void
list_free_deep(List *list)
{
	NOT_REACHED("list_free_deep");
}

List *
list_make1_impl(NodeTag t, ListCell datum1)
{
	NOT_REACHED("list_make1_impl");
}

List *
list_delete_last(List *list)
{
	NOT_REACHED("list_delete_last");
}

Oid
GetUserId(void)
{
	NOT_REACHED("GetUserId");
}

bool
has_privs_of_role(Oid member, Oid role)
{
	NOT_REACHED("has_privs_of_role");
}

int
pg_fsync(int fd)
{
	NOT_REACHED("pg_fsync");
}

bool
sms_valid_server_path(const char *s, const char *what, bool raise)
{
	NOT_REACHED("sms_valid_server_path");
}


int
durable_rename(const char *oldfile, const char *newfile, int loglevel)
{
	NOT_REACHED("durable_rename");
}

/* ----------------------------------------------------------------
 * Hash tables (utils/hsearch.h): what package_extract.c uses, over an
 * array searched linearly with the table's match function (fuzz inputs
 * hold few entries); entries stay where they were allocated, as in
 * dynahash.
 * ----------------------------------------------------------------
 */
struct HTAB
{
	Size		keysize;
	Size		entrysize;
	HashCompareFunc match;
	void	  **entries;
	long		n;
	long		cap;
};

HTAB *
hash_create(const char *tabname, long nelem, const HASHCTL *info, int flags)
{
	HTAB	   *h = palloc0(sizeof(HTAB));

	if (!(flags & HASH_ELEM))
		NOT_REACHED("hash_create without HASH_ELEM");
	h->keysize = info->keysize;
	h->entrysize = info->entrysize;
	h->match = (flags & HASH_COMPARE) ? info->match : NULL;
	return h;
}

static bool
key_equal(HTAB *h, const void *a, const void *b)
{
	return h->match ? h->match(a, b, h->keysize) == 0 : memcmp(a, b, h->keysize) == 0;
}

void *
hash_search(HTAB *h, const void *key, HASHACTION action, bool *found)
{
	for (long i = 0; i < h->n; i++)
	{
		if (key_equal(h, h->entries[i], key))
		{
			if (found)
				*found = true;
			if (action == HASH_REMOVE)
			{
				void	   *e = h->entries[i];

				h->entries[i] = h->entries[--h->n];
				return e;
			}
			return h->entries[i];
		}
	}
	if (found)
		*found = false;
	if (action != HASH_ENTER && action != HASH_ENTER_NULL)
		return NULL;
	if (h->n == h->cap)
	{
		h->cap = h->cap ? h->cap * 2 : 16;
		h->entries = h->entries ? repalloc(h->entries, h->cap * sizeof(void *))
			: palloc(h->cap * sizeof(void *));
	}
	h->entries[h->n] = palloc0(h->entrysize);
	memcpy(h->entries[h->n], key, h->keysize);
	return h->entries[h->n++];
}

long
hash_get_num_entries(HTAB *h)
{
	return h->n;
}

void
hash_seq_init(HASH_SEQ_STATUS *status, HTAB *h)
{
	memset(status, 0, sizeof(*status));
	status->hashp = h;
	status->curBucket = 0;
}

void *
hash_seq_search(HASH_SEQ_STATUS *status)
{
	HTAB	   *h = status->hashp;

	if (status->curBucket >= (uint32) h->n)
		return NULL;
	return h->entries[status->curBucket++];
}

/* ----------------------------------------------------------------
 * Files (storage/fd.h): the plain system calls
 * ----------------------------------------------------------------
 */
int
OpenTransientFile(const char *fileName, int fileFlags)
{
	return open(fileName, fileFlags, 0600);
}

int
CloseTransientFile(int fd)
{
	return close(fd);
}

DIR *
AllocateDir(const char *dirname)
{
	DIR		   *d = opendir(dirname);

	if (d == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", dirname)));
	return d;
}

struct dirent *
ReadDir(DIR *dir, const char *dirname)
{
	return readdir(dir);
}

struct dirent *
ReadDirExtended(DIR *dir, const char *dirname, int elevel)
{
	return dir ? readdir(dir) : NULL;
}

int
FreeDir(DIR *dir)
{
	return closedir(dir);
}

void
ReserveExternalFD(void)
{
}

void
ReleaseExternalFD(void)
{
}

void
pg_flush_data(int fd, off_t offset, off_t nbytes)
{
}

/*
 * The inflater process (inflate.c) is started only for package files of
 * SMS_INFLATER_MIN_BYTES and more, which no fuzz input is: libarchive's
 * gzip filter reads them, as it reads every small package file.
 */
SmsInflater *
sms_inflater_start(const char *path)
{
	return NULL;
}

ssize_t
sms_inflater_read(SmsInflater *inf, const void **data, char **err)
{
	NOT_REACHED("sms_inflater_read");
}

void
sms_inflater_finish(SmsInflater *inf, const char *path, char *file_sha256)
{
	NOT_REACHED("sms_inflater_finish");
}

void
sms_inflater_stop(SmsInflater *inf)
{
	if (inf != NULL)
		NOT_REACHED("sms_inflater_stop");
}

/*
 * Package sources (source_roots.c) belong to building a package, which no
 * target does: the extraction targets only link the archive code with it.
 */
void
sms_check_source_directory(const char *source_dir, int dirfd)
{
	NOT_REACHED("sms_check_source_directory");
}

/*
 * Times in query rules: OidInputFunctionCall above returns 0 for every
 * timestamptz it accepts (2000-01-01 00:00 UTC), so these need only turn
 * a timestamp into its ISO form, in UTC, as the backend's do under ISO.
 */
void
EncodeSpecialTimestamp(Timestamp dt, char *str)
{
	strcpy(str, dt < 0 ? "-infinity" : "infinity");
}

int
timestamp2tm(Timestamp dt, int *tzp, struct pg_tm *tm, fsec_t *fsec, const char **tzn, pg_tz *attimezone)
{
	time_t		secs = (time_t) (dt / USECS_PER_SEC) + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	struct tm	u;

	if (gmtime_r(&secs, &u) == NULL)
		return -1;
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = u.tm_year + 1900;
	tm->tm_mon = u.tm_mon + 1;
	tm->tm_mday = u.tm_mday;
	tm->tm_hour = u.tm_hour;
	tm->tm_min = u.tm_min;
	tm->tm_sec = u.tm_sec;
	*fsec = (fsec_t) (dt % USECS_PER_SEC);
	if (tzp)
		*tzp = 0;
	if (tzn)
		*tzn = "UTC";
	return 0;
}

void
EncodeDateTime(struct pg_tm *tm, fsec_t fsec, bool print_tz, int tz, const char *tzn, int style, char *str)
{
	sprintf(str, "%04d-%02d-%02d %02d:%02d:%02d%s", tm->tm_year, tm->tm_mon, tm->tm_mday,
			tm->tm_hour, tm->tm_min, tm->tm_sec, print_tz ? "+00" : "");
}
