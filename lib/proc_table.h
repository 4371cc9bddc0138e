/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * An app's process table on disk (docs/PROCESS.md, "Restarts"): what
 * spryd's process room must know again after a restart of spryd.  One
 * root-only JSON file per app, <state-dir>/apps/processes/<app>.json,
 * written whole (lib/jsonfile.c: 0600, fsync, rename), removed with the
 * app (spry_app__remove()).
 *
 *   { "app": "a1", "boot": "<boot id>", "next-id": 12,
 *     "processes": [ { "id": 7, "state": "allocated", "pid": 4242,
 *                      "pid-start": 812345, "swap": false, "swap-file": true,
 *                      "activations": 3, "swaps": 1 }, ... ] }
 *
 * Between two writes of the file, each change is one line appended to
 * its journal, DIR/APP.json.log (write(2) before the change is answered;
 * fdatasync within a second), a process's record or its removal:
 *
 *   {"set": {"id": 7, "state": "swapped", ...}, "next-id": 12}
 *   {"del": 7, "next-id": 12}
 *
 * Reading replays the journal over the file (the last line about an id
 * wins, so lines the file already holds change nothing); a last line
 * without its newline (a write cut short) is ignored.  Writing the file
 * (every ~2 x processes lines) empties the journal: a change costs one
 * short write, not the whole table.
 *
 * state: what the process is without an OS process (allocated or
 * swapped); pid: its OS process when the table was written (0: none),
 * pid-start: that pid's start time (/proc/PID/stat field 22), the proof
 * that a pid adopted later is still that process (a process cloned from
 * its app's template has its template's environment; absent in an older
 * table: the environment is checked, as then),
 * swap: that OS process was being stopped for a swap; swap-file: a swap
 * out wrote the process's swap file (it stays until the process is
 * deleted), so its state must come from its store or that file, never be
 * created empty (absent, in a table of an older spryd: unknown, and spryd
 * derives it from the file being there); boot: the kernel's
 * boot id then (a pid of another boot is never adopted); next-id: the last
 * id spryd picked for a process created without one (never goes back).
 */
#ifndef SPRY_LIB_PROC_TABLE_H
#define SPRY_LIB_PROC_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spry/abi.h"

#define SPRY_PROC_TABLE_DIR	"processes"	/* under the apps' directory */
#define SPRY_BOOT_ID_LEN	40

struct spry_proc_rec {
	uint64_t	id;		/* 1..SPRY_PROC_ID_MAX */
	uint64_t	activations;
	uint64_t	swaps;
	int32_t		pid;		/* 0, or its OS process (> 1) */
	uint64_t	pid_start;	/* "pid-start": pid's start time (/proc/PID/stat
					 * field 22), 0: not known (an older table) */
	uint8_t		state;		/* SPRY_PS_ALLOCATED or SPRY_PS_SWAPPED */
	bool		swap;		/* pid was stopping for a swap */
	uint8_t		swap_file;	/* enum spry_proc_swap_file */
};

enum spry_proc_swap_file {
	SPRY_SF_NO	= 0,
	SPRY_SF_YES	= 1,
	SPRY_SF_UNKNOWN	= 2,	/* "swap-file" absent: an older table or journal */
};

struct spry_proc_table {
	char			app[SPRY_NAME_LEN];
	char			boot[SPRY_BOOT_ID_LEN];	/* "" unknown */
	uint64_t		next_id;
	uint32_t		n, cap;
	struct spry_proc_rec	*recs;		/* sorted by id once read */
};

/* <apps-dir>/processes into @buf: 0 or -ENAMETOOLONG. */
int spry_proc_table_dir(const char *apps_dir, char *buf, size_t len);
/* Append a record (grows recs): 0 or -ENOMEM. */
int spry_proc_table__add(struct spry_proc_table *t, const struct spry_proc_rec *r);
void spry_proc_table__free(struct spry_proc_table *t);
/*
 * Parse @len bytes of a table of app @app (NULL: any) into @t (zeroed
 * first; freed by spry_proc_table__free() in every case): 0, -ENOMEM, or
 * -EINVAL with the reason in @err (not JSON, an unknown key, another
 * app's, an id out of range or twice, a bad state or pid, more than
 * SPRY_MAX_PROCS processes).
 */
int spry_proc_table__parse(const char *text, size_t len, const char *app,
			   struct spry_proc_table *t, char *err, size_t errlen);
/*
 * Replay @len bytes of journal over @t (parsed): 0, -ENOMEM, or -EINVAL
 * with the line and the reason in @err.  *@torn: a last line cut short
 * was ignored.
 */
int spry_proc_table__replay(struct spry_proc_table *t, const char *text, size_t len,
			    bool *torn, char *err, size_t errlen);
/*
 * Read DIR/APP.json and its journal: 0, -ENOENT (neither there), -EIO,
 * or as __parse() and __replay().
 */
int spry_proc_table__read(const char *dir, const char *app, struct spry_proc_table *t,
			  bool *torn, char *err, size_t errlen);
/*
 * Write @t to DIR/<t->app>.json atomically (0600, fsync, rename), then
 * empty the journal @jfd (-1: none): 0 or -errno (the old file kept).
 * With @next, the records are not t->recs but what @next gives (1: one
 * in *@r, 0: no more), in any order: a writer's table need not be held
 * as one array.
 */
int spry_proc_table__write(const char *dir, const struct spry_proc_table *t, int jfd,
			   int (*next)(void *ctx, struct spry_proc_rec *r), void *ctx);
/* Open DIR/APP.json.log to append (created 0600, DIR made): fd or -errno. */
int spry_proc_table__journal_open(const char *dir, const char *app);
/*
 * Append the line of @r (NULL: the removal of @del_id) with @next_id to
 * @jfd, in one write: 0 or -errno.
 */
int spry_proc_table__append(int jfd, const struct spry_proc_rec *r, uint64_t del_id,
			    uint64_t next_id);
/* Remove DIR/APP.json and its journal: 0 when they are not there. */
int spry_proc_table__remove(const char *dir, const char *app);
/* Rename both aside (.bad suffixes): 0 or -errno. */
int spry_proc_table__set_aside(const char *dir, const char *app, char *bad, size_t len);

#endif /* SPRY_LIB_PROC_TABLE_H */
