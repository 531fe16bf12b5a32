/*-------------------------------------------------------------------------
 *
 * query_rule.h
 *	  Collection query rules: a rule compiled into a SQL condition over
 *	  the alias r (smsdist.system_resources).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_QUERY_RULE_H
#define SMSDIST_QUERY_RULE_H

#include "smsdist.h"

extern char *sms_compile_query_rule(const char *rule);

#endif							/* SMSDIST_QUERY_RULE_H */
