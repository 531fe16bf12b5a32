/*-------------------------------------------------------------------------
 *
 * instruction_box.h
 *	  Instruction-file boxes: the outbox and the CAPs' copies (terms in
 *	  instruction_box.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_INSTRUCTION_BOX_H
#define SMSDIST_INSTRUCTION_BOX_H

#include "smsdist.h"

#include "nodes/pg_list.h"

/* One file the outbox must hold. */
typedef struct SmsBoxFile
{
	const char *box;			/* SMS_FMT_DIR_OFFERINF or SMS_FMT_DIR_PKGINFO */
	char	   *name;
	char	   *text;			/* palloc'd */
	size_t		len;
} SmsBoxFile;

extern bool sms_instruction_file_name(const char *name);
extern int	sms_sync_box(const char *dir, const char *box, List *files);
extern char *sms_instruction_outbox(void);

#endif							/* SMSDIST_INSTRUCTION_BOX_H */
