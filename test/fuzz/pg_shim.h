/*-------------------------------------------------------------------------
 *
 * pg_shim.h
 *	  Just enough of the PostgreSQL server for the fuzz targets that run
 *	  server code (query_rule.c, package_manifest.c, package_delta.c,
 *	  package_extract.c and the files it uses)
 *	  outside a server: see pg_shim.c.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SHIM_H
#define PG_SHIM_H

#include "postgres.h"

#include <setjmp.h>

/* The last ERROR raised (ereport/elog at ERROR or above). */
extern int	shim_error_code;
extern char shim_error_message[1024];

/* Free everything palloc'd since the last call (one fuzz input's memory). */
extern void shim_reset_memory(void);

/*
 * Run fn(arg) as the server would inside a transaction: returns true if it
 * returned, false if it raised an ERROR (shim_error_code and
 * shim_error_message say which).  Memory is not freed: call
 * shim_reset_memory once the result has been checked.
 */
extern bool shim_try(void (*fn) (void *arg), void *arg);

#endif							/* PG_SHIM_H */
