/*
 * accesslog.c
 *		The access history: who read and changed which protected table, when,
 *		with what outcome.
 *
 * Capture.  Executor and utility hooks note every protected table a
 * statement touches, at any depth (functions and triggers count toward the
 * statement that called them).  Rows read are counted by row instrumentation
 * kept only on the scans of protected tables; rows inserted, updated and
 * deleted are the difference of the transaction's own table statistics
 * before and after the statement, so COPY, triggers and MERGE are exact.
 * When the outermost hook returns, or catches an error, one record per
 * statement goes into a queue in shared memory: the record is out of the
 * transaction, so a rollback or an error keeps it.
 *
 * Writing.  One writer per database (a dynamic background worker, started
 * on demand and leaving when idle, so that DROP DATABASE is never held up
 * for long) takes the records of its database in order, chains them per
 * tenant with SHA-256 and inserts them into utilix.access_log in one
 * transaction per batch.  On a hot standby the writer appends them to a
 * spill file instead, which an operator loads on the primary.
 *
 * Nothing is dropped silently.  A full queue waits or spills
 * (utilix.access_log_overflow); when the postmaster reinitialises shared
 * memory after a crash, or shuts down, it first writes every complete
 * queued record to the spill directory, and the writer loads it later;
 * loads are idempotent (each record carries a unique id).  What could not
 * be kept is counted in utilix.access_log_status.
 *
 * No hook here raises an error of its own: a record that cannot be queued
 * is spilled, and one that cannot be spilled is counted as lost.
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "common/ip.h"
#include "utils/backend_status.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/typcache.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/queryjumble.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "utilix.h"
#include "accesslog.h"

/* ---- the record (its layout: accesslog.h) ---- */

typedef enum AlogKind
{
	ALOG_SELECT = 0, ALOG_INSERT, ALOG_UPDATE, ALOG_DELETE, ALOG_MERGE,
	ALOG_COPY, ALOG_TRUNCATE, ALOG_DDL, ALOG_LOGIN, ALOG_ADMIN, ALOG_KEY,
	ALOG_PURGE, ALOG_EXPORT, ALOG_NKINDS
} AlogKind;

static const char *const kind_names[ALOG_NKINDS] = {
	"select", "insert", "update", "delete", "merge", "copy", "truncate",
	"ddl", "login", "admin", "key", "purge", "export"
};

typedef enum AlogOutcome
{
	ALOG_OK = 0, ALOG_ERROR, ALOG_DENIED
} AlogOutcome;

static const char *const outcome_names[] = {"ok", "error", "denied"};

/* ---- shared memory ---- */

typedef enum SlotState
{
	SLOT_FREE = 0, SLOT_READY, SLOT_TAKEN
} SlotState;

typedef struct AlogSlot
{
	volatile uint8 state;
	AlogRecord	rec;
} AlogSlot;

#define ALOG_MAX_WRITERS 32

typedef enum WriterState
{
	WRITER_NONE = 0, WRITER_STARTING, WRITER_RUNNING
} WriterState;

typedef struct AlogWriter
{
	Oid			dboid;
	int			state;
	pid_t		pid;
	Latch	   *latch;
	bool		idle;			/* waiting for work: new records wake it */
	bool		urgent;			/* a statement waits for a commit (access_log_sync) */
	TimestampTz launched_at;
	uint64		committed_upto; /* every record of this db with seq <= this is kept */
	uint64		written;
	TimestampTz last_write;
} AlogWriter;

typedef struct AlogShared
{
	LWLock	   *lock;
	ConditionVariable space_cv; /* a slot was freed */
	ConditionVariable done_cv;	/* a batch was committed */
	uint64		epoch;
	uint64		next_seq;
	int			nslots;
	int			nfree;
	pg_atomic_uint64 queued;
	pg_atomic_uint64 written;
	pg_atomic_uint64 spilled;
	pg_atomic_uint64 loaded;
	pg_atomic_uint64 lost;
	pg_atomic_uint64 waits;
	AlogWriter	writers[ALOG_MAX_WRITERS];
	/* then: int free_stack[nslots]; AlogSlot slots[nslots] */
} AlogShared;

static AlogShared *alog = NULL;
static int *alog_free_stack = NULL;
static AlogSlot *alog_slots = NULL;

/* ---- settings ---- */

enum
{
	ALOG_MODE_OFF = 0, ALOG_MODE_WRITES, ALOG_MODE_ALL, ALOG_MODE_DEFAULT
};

static const struct config_enum_entry mode_options[] = {
	{"off", ALOG_MODE_OFF, false},
	{"writes", ALOG_MODE_WRITES, false},
	{"all", ALOG_MODE_ALL, false},
	{NULL, 0, false}
};

enum
{
	OVERFLOW_SPILL = 0, OVERFLOW_WAIT
};

static const struct config_enum_entry overflow_options[] = {
	{"spill", OVERFLOW_SPILL, false},
	{"wait", OVERFLOW_WAIT, false},
	{NULL, 0, false}
};

static int	alog_mode = ALOG_MODE_ALL;
static int	alog_queue_size = 4096;
static int	alog_overflow = OVERFLOW_SPILL;
static int	alog_wait_timeout = 5000;
static bool alog_sync = false;
static bool alog_query_text = false;
static int	alog_retention = 400;
static int	alog_batch = 1000;
static int	alog_writer_delay = 10;
static int	alog_writer_idle = 2000;

#define ALOG_SPILL_DIR	"pg_utilix_access_log"
/* ---- per-backend state ---- */

typedef struct PendingTable
{
	Oid			relid;
	int			mode;
	char		relkind;			/* the table's own setting, or ALOG_MODE_DEFAULT */
	char		name[ALOG_NAME_LEN];
	int64		base_ins;
	int64		base_upd;
	int64		base_del;
	int64		nread;
	bool		touched;		/* noted since the last change of context */
} PendingTable;

#define MAX_PENDING_TABLES 256

static struct
{
	bool		active;
	bool		writes;			/* something was (or would have been) changed */
	int			caught_code;	/* a refusal inside the statement that a handler caught */
	int			untracked;		/* protected tables beyond MAX_PENDING_TABLES */
	bool		notes_lost;		/* a query could not be followed (out of memory) */
	const char *note;			/* a constant detail for every record of the statement */
	AlogRecord	who;			/* roles, client: taken when the statement began */
	int			kind;
	TimestampTz at;
	int64		queryid;
	int			ntables;
	PendingTable tables[MAX_PENDING_TABLES];
	char		query[ALOG_QUERY_LEN];
}			pending;

/* events recorded on commit only (utilix._log_event(..., on_commit => true)), newest first */
typedef struct DeferredEvent
{
	AlogRecord	rec;
	SubTransactionId subxid;
	struct DeferredEvent *next;
} DeferredEvent;

static DeferredEvent *deferred_events = NULL;

static int	hook_depth = 0;
static int	top_kind = -1;
static bool in_alog_worker = false;
static uint64 my_last_seq = 0;
static bool my_sync_wait = false;

/* protected tables of this database: relid -> mode, name */
typedef struct ProtEntry
{
	Oid			relid;
	int			mode;
	char		relkind;
	char		name[ALOG_NAME_LEN];
} ProtEntry;

static HTAB *prot_map = NULL;
static uint64 prot_generation = 0;
static bool prot_loading = false;
static int	prot_count = 0;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static planner_hook_type prev_planner = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PGDLLEXPORT void utilix_alog_writer_main(Datum arg);

static void alog_flush(int outcome, int sqlerrcode);
static RangeVar *ddl_relation(Node *stmt);
static bool next_spill_file(Oid dboid, char *buf, size_t len);
static void guard_access_log_ddl(Node *stmt);
static bool log_maintenance = false;
static bool spill_records(Oid dboid, const AlogRecord *recs, int n, bool do_fsync);

/* =====================================================================
 * Shared memory
 * ===================================================================== */

static Size
alog_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(AlogShared));

	size = add_size(size, MAXALIGN(mul_size(sizeof(int), alog_queue_size)));
	size = add_size(size, mul_size(sizeof(AlogSlot), alog_queue_size));
	return size;
}

static void
alog_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(alog_shmem_size());
	RequestNamedLWLockTranche("utilix_access_log", 1);
}

/*
 * In the postmaster, before shared memory goes away (shutdown of any kind,
 * or the reinitialisation after a backend crashed): every complete record
 * still queued is written to the spill directory of its database.  A slot
 * that a crashed backend left half written fails its checksum and is
 * counted (in the log: the counters themselves are about to go).
 */
static void
alog_shmem_exit(int code, Datum arg)
{
	int			kept = 0;
	int			broken = 0;

	if (alog == NULL || alog_slots == NULL)
		return;
	for (;;)
	{
		/* one pass per database that has queued records */
		Oid			db = InvalidOid;
		AlogRecord *batch;
		int			n = 0;

		/* the queue size of this process, not one read from memory a crash may have damaged */
		for (int i = 0; i < alog_queue_size; i++)
		{
			AlogSlot   *s = &alog_slots[i];

			if (s->state == SLOT_FREE)
				continue;
			if (!record_crc_ok(&s->rec))
			{
				broken++;
				s->state = SLOT_FREE;
				continue;
			}
			if (!OidIsValid(db))
				db = s->rec.dboid;
		}
		if (!OidIsValid(db))
			break;
		batch = malloc(sizeof(AlogRecord) * alog_queue_size);
		if (batch == NULL)
			break;
		for (int i = 0; i < alog_queue_size; i++)
		{
			AlogSlot   *s = &alog_slots[i];

			if (s->state != SLOT_FREE && s->rec.dboid == db)
			{
				memcpy(&batch[n++], &s->rec, sizeof(AlogRecord));
				s->state = SLOT_FREE;
			}
		}
		if (spill_records(db, batch, n, true))
			kept += n;
		else
			broken += n;
		free(batch);
	}
	if (kept > 0 || broken > 0)
		ereport(LOG,
				(errmsg("utilix: %d queued access log records written to the spill directory, %d could not be kept",
						kept, broken)));
	alog = NULL;
	alog_slots = NULL;
}

static void
alog_shmem_startup(void)
{
	bool		found;
	char	   *base;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	base = ShmemInitStruct("utilix access log", alog_shmem_size(), &found);
	alog = (AlogShared *) base;
	alog_free_stack = (int *) (base + MAXALIGN(sizeof(AlogShared)));
	alog_slots = (AlogSlot *) (base + MAXALIGN(sizeof(AlogShared)) +
							   MAXALIGN(mul_size(sizeof(int), alog_queue_size)));
	if (!found)
	{
		memset(alog, 0, sizeof(AlogShared));
		alog->lock = &(GetNamedLWLockTranche("utilix_access_log"))->lock;
		ConditionVariableInit(&alog->space_cv);
		ConditionVariableInit(&alog->done_cv);
		if (!pg_strong_random(&alog->epoch, sizeof(alog->epoch)))
			alog->epoch = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
		alog->next_seq = 1;
		alog->nslots = alog_queue_size;
		alog->nfree = alog_queue_size;
		for (int i = 0; i < alog_queue_size; i++)
		{
			alog_free_stack[i] = alog_queue_size - 1 - i;
			alog_slots[i].state = SLOT_FREE;
		}
		pg_atomic_init_u64(&alog->queued, 0);
		pg_atomic_init_u64(&alog->written, 0);
		pg_atomic_init_u64(&alog->spilled, 0);
		pg_atomic_init_u64(&alog->loaded, 0);
		pg_atomic_init_u64(&alog->lost, 0);
		pg_atomic_init_u64(&alog->waits, 0);
	}
	LWLockRelease(AddinShmemInitLock);
	if (!IsUnderPostmaster)
		on_shmem_exit(alog_shmem_exit, (Datum) 0);
}

/* =====================================================================
 * Spill files: <data directory>/pg_utilix_access_log/<database oid>/
 * ===================================================================== */

static void
spill_dir(Oid dboid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%u", ALOG_SPILL_DIR, dboid);
}

/*
 * Append records to the spill file of a database.  Plain POSIX calls, so
 * that the postmaster can use it too; never raises an error.  A loader
 * renames a file before reading it and takes the same lock, so an append
 * either lands before the rename (and is read) or finds the file gone and
 * starts a new one.
 */
static bool
spill_records(Oid dboid, const AlogRecord *recs, int n, bool do_fsync)
{
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	int			attempt;

	if (n <= 0)
		return true;
	spill_dir(dboid, dir, sizeof(dir));
	(void) mkdir(ALOG_SPILL_DIR, S_IRWXU);
	(void) mkdir(dir, S_IRWXU);
	snprintf(path, sizeof(path), "%s/%d.spill", dir, (int) getpid());
	for (attempt = 0; attempt < 3; attempt++)
	{
		int			fd = open(path, O_WRONLY | O_CREAT | O_APPEND, S_IRUSR | S_IWUSR);
		struct stat st;
		bool		ok = true;

		if (fd < 0)
			return false;
		if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0)
		{
			close(fd);
			return false;
		}
		if (st.st_nlink == 0)
		{
			/* a loader took this file after we opened it: start another */
			close(fd);
			continue;
		}
		if (st.st_size == 0)
		{
			SpillHeader h;

			memset(&h, 0, sizeof(h));
			memcpy(h.magic, ALOG_SPILL_MAGIC, 8);
			h.record_size = sizeof(AlogRecord);
			h.version = 1;
			ok = (write(fd, &h, sizeof(h)) == sizeof(h));
		}
		for (int i = 0; ok && i < n; i++)
			ok = (write(fd, &recs[i], sizeof(AlogRecord)) == sizeof(AlogRecord));
		if (ok && do_fsync)
			ok = (fsync(fd) == 0);
		close(fd);
		if (ok && alog != NULL)
			pg_atomic_fetch_add_u64(&alog->spilled, n);
		return ok;
	}
	return false;
}

/* =====================================================================
 * Writers: one per database, started on demand
 * ===================================================================== */

static AlogWriter *
writer_for(Oid dboid, bool create)
{
	AlogWriter *free_w = NULL;

	for (int i = 0; i < ALOG_MAX_WRITERS; i++)
	{
		AlogWriter *w = &alog->writers[i];

		if (w->dboid == dboid && OidIsValid(dboid))
			return w;
		if (!OidIsValid(w->dboid) && free_w == NULL)
			free_w = w;
	}
	if (create && free_w != NULL)
	{
		memset(free_w, 0, sizeof(AlogWriter));
		free_w->dboid = dboid;
	}
	return create ? free_w : NULL;
}

/*
 * Make sure the writer of a database runs.  Called with the lock held
 * exclusively; registering a worker takes no lock of ours.  A writer that
 * was asked for but did not come up within ten seconds is asked for again.
 */
static void
ensure_writer_locked(Oid dboid)
{
	AlogWriter *w = writer_for(dboid, true);
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	TimestampTz now;

	if (w == NULL)
		return;
	if (w->state == WRITER_RUNNING)
	{
		/* wake it only when it waits for work, not while a batch gathers */
		if (w->latch && w->idle)
		{
			w->idle = false;
			SetLatch(w->latch);
		}
		return;
	}
	now = GetCurrentTimestamp();
	if (w->state == WRITER_STARTING &&
		!TimestampDifferenceExceeds(w->launched_at, now, 10000))
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "utilix");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "utilix_alog_writer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "utilix access log writer for database %u", dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "utilix access log writer");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = 0;
	w->state = WRITER_STARTING;
	w->launched_at = now;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		w->launched_at = now - 9 * USECS_PER_SEC;	/* no slot: retry in a second */
}

/* Does the database exist?  (pg_database is shared: readable from any database.) */
static bool
database_exists(Oid dboid)
{
	bool		exists;

	StartTransactionCommand();
	exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dboid));
	CommitTransactionCommand();
	return exists;
}

/*
 * For the main utilix worker, every second: start the writers of databases
 * that have queued records or spill files but no writer (after a restart,
 * nobody else would).
 */
void
utilix_access_log_launch_writers(void)
{
	DIR		   *d;
	struct dirent *de;
	Oid			want[ALOG_MAX_WRITERS];
	int			nwant = 0;

	if (alog == NULL)
		return;
	LWLockAcquire(alog->lock, LW_SHARED);
	for (int i = 0; i < alog->nslots && nwant < ALOG_MAX_WRITERS; i++)
	{
		AlogSlot   *s = &alog_slots[i];
		bool		seen = false;

		if (s->state != SLOT_READY)
			continue;
		for (int j = 0; j < nwant; j++)
			seen |= (want[j] == s->rec.dboid);
		if (!seen)
			want[nwant++] = s->rec.dboid;
	}
	LWLockRelease(alog->lock);

	d = opendir(ALOG_SPILL_DIR);
	if (d != NULL)
	{
		while ((de = readdir(d)) != NULL && nwant < ALOG_MAX_WRITERS)
		{
			char		path[MAXPGPATH];
			Oid			db = (Oid) strtoul(de->d_name, NULL, 10);
			bool		has;

			if (!OidIsValid(db) || strspn(de->d_name, "0123456789") != strlen(de->d_name))
				continue;
			has = next_spill_file(db, path, sizeof(path));
			if (has && !database_exists(db))
			{
				/* the database was dropped: its records have nowhere to go */
				char		from[MAXPGPATH];
				char		to[MAXPGPATH];

				spill_dir(db, from, sizeof(from));
				snprintf(to, sizeof(to), "%s.dropped", from);
				if (rename(from, to) == 0)
					ereport(LOG,
							(errmsg("utilix: database %u no longer exists; its spilled access log records were moved to \"%s\"",
									db, to)));
				continue;
			}
			if (has)
				want[nwant++] = db;
		}
		closedir(d);
	}
	if (nwant == 0)
		return;
	for (int j = 0; j < nwant; j++)
	{
		if (!database_exists(want[j]))
		{
			/* a dropped database: its queued records have nowhere to go */
			int			n = 0;

			LWLockAcquire(alog->lock, LW_EXCLUSIVE);
			for (int i = 0; i < alog->nslots; i++)
				if (alog_slots[i].state == SLOT_READY && alog_slots[i].rec.dboid == want[j])
				{
					alog_slots[i].state = SLOT_FREE;
					alog_free_stack[alog->nfree++] = i;
					n++;
				}
			LWLockRelease(alog->lock);
			if (n > 0)
			{
				pg_atomic_fetch_add_u64(&alog->lost, n);
				ereport(LOG,
						(errmsg("utilix: database %u no longer exists; its %d queued access log records were given up",
								want[j], n)));
			}
			continue;
		}
		LWLockAcquire(alog->lock, LW_EXCLUSIVE);
		ensure_writer_locked(want[j]);
		LWLockRelease(alog->lock);
	}
}

/* =====================================================================
 * Queueing a record
 * ===================================================================== */

static bool
interrupt_pending(void)
{
	return QueryCancelPending || ProcDiePending;
}

/*
 * Put a record in the queue (or, when full, wait or spill).  Never raises
 * an error; returns the record's sequence number, or 0 when it was spilled
 * or lost.
 */
static uint64
alog_enqueue(AlogRecord *rec)
{
	TimestampTz wait_start = 0;

	if (alog == NULL)
		return 0;
	rec->dboid = MyDatabaseId;
	rec->pid = MyProcPid;
	for (;;)
	{
		LWLockAcquire(alog->lock, LW_EXCLUSIVE);
		if (alog->nfree > 0)
		{
			int			idx = alog_free_stack[--alog->nfree];
			AlogSlot   *s = &alog_slots[idx];
			uint64		seq;

			rec->epoch = alog->epoch;
			rec->seq = seq = alog->next_seq++;
			record_set_crc(rec);
			memcpy(&s->rec, rec, sizeof(AlogRecord));
			pg_write_barrier();
			s->state = SLOT_READY;
			ensure_writer_locked(rec->dboid);
			LWLockRelease(alog->lock);
			pg_atomic_fetch_add_u64(&alog->queued, 1);
			return seq;
		}
		ensure_writer_locked(rec->dboid);
		LWLockRelease(alog->lock);

		if (alog_overflow == OVERFLOW_WAIT && !interrupt_pending())
		{
			if (wait_start == 0)
			{
				wait_start = GetCurrentTimestamp();
				pg_atomic_fetch_add_u64(&alog->waits, 1);
			}
			if (!TimestampDifferenceExceeds(wait_start, GetCurrentTimestamp(), alog_wait_timeout))
			{
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 10L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				continue;
			}
		}
		/* spill: the writer loads it later */
		rec->epoch = alog->epoch;
		rec->seq = 0;
		{
			/* a unique id all the same: a random number of this backend and a counter */
			static uint64 spill_base = 0;
			static uint64 local_counter = 0;

			if (spill_base == 0 && !pg_strong_random(&spill_base, sizeof(spill_base)))
				spill_base = ((uint64) MyProcPid << 32) ^ (uint64) GetCurrentTimestamp();
			rec->seq = ((uint64) 1 << 63) | ((spill_base + (++local_counter)) & ~((uint64) 1 << 63));
		}
		record_set_crc(rec);
		if (!spill_records(rec->dboid, rec, 1, alog_sync))
			pg_atomic_fetch_add_u64(&alog->lost, 1);
		return 0;
	}
}

/*
 * Wait until the writer has committed the record (access_log_sync), at
 * most utilix.access_log_wait_timeout: a writer that cannot keep up (or
 * start) gets a warning, not a statement that never returns.
 */
static void
alog_wait_committed(uint64 seq)
{
	TimestampTz start = GetCurrentTimestamp();
	bool		done = false;

	if (alog == NULL || seq == 0)
		return;
	ConditionVariablePrepareToSleep(&alog->done_cv);
	for (;;)
	{
		AlogWriter *w;

		LWLockAcquire(alog->lock, LW_EXCLUSIVE);
		w = writer_for(MyDatabaseId, false);
		done = (w != NULL && w->committed_upto >= seq);
		if (!done)
		{
			/* a slot is freed only once its record is kept: none of ours at or below seq left */
			done = true;
			for (int i = 0; i < alog->nslots && done; i++)
				if (alog_slots[i].state != SLOT_FREE && alog_slots[i].rec.dboid == MyDatabaseId &&
					alog_slots[i].rec.seq <= seq)
					done = false;
		}
		if (!done)
		{
			/* the writer is gathering a batch: tell it someone waits (or start one) */
			if (w != NULL && w->state == WRITER_RUNNING && !w->urgent && w->latch)
			{
				w->urgent = true;
				SetLatch(w->latch);
			}
			else if (w == NULL || w->state != WRITER_RUNNING)
				ensure_writer_locked(MyDatabaseId);
		}
		LWLockRelease(alog->lock);
		if (done || interrupt_pending() ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), alog_wait_timeout))
			break;
		(void) ConditionVariableTimedSleep(&alog->done_cv, 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	if (!done && !interrupt_pending())
		ereport(WARNING,
				(errmsg("the access log record of this statement is not committed yet"),
				 errdetail("utilix.access_log_sync waited utilix.access_log_wait_timeout (%d ms); the record stays queued.",
						   alog_wait_timeout)));
}

/* =====================================================================
 * Who and where: the parts of a record that describe the session
 * ===================================================================== */

/*
 * The name of a role into buf (NAMEDATALEN), remembered with *last so that
 * the syscache is read only when the role changes; "oid N" where it cannot
 * be read (a role dropped meanwhile, or the abort path, where no lookup is
 * made) and then looked up again next time.
 */
static void
role_name(Oid role, Oid *last, char *buf, bool can_lookup)
{
	char	   *n;

	if (role == *last)
		return;
	n = can_lookup ? GetUserNameFromId(role, true) : NULL;
	if (n != NULL)
		strlcpy(buf, n, NAMEDATALEN);
	else
		snprintf(buf, NAMEDATALEN, "oid %u", role);
	*last = n != NULL ? role : InvalidOid;
}

static void
fill_session(AlogRecord *rec, bool acting_role)
{
	static Oid	last_session = InvalidOid;
	static char session_name[NAMEDATALEN];
	static Oid	last_current = InvalidOid;
	static char current_name[NAMEDATALEN];
	Oid			sess = GetSessionUserId();
	Oid			cur = acting_role ? GetOuterUserId() : GetUserId();
	bool		can_lookup = IsTransactionState() && !IsAbortedTransactionBlockState();

	rec->at = GetCurrentTimestamp();
	/*
	 * Role names: from the syscache, remembered (no error if a role is gone);
	 * not looked up outside a healthy transaction (the abort path).
	 */
	role_name(sess, &last_session, session_name, can_lookup);
	role_name(cur, &last_current, current_name, can_lookup);
	strlcpy(rec->session_role, session_name, sizeof(rec->session_role));
	strlcpy(rec->current_role, current_name, sizeof(rec->current_role));
	if (MyBEEntry != NULL && MyBEEntry->st_clientaddr.salen > 0 &&
		MyBEEntry->st_clientaddr.addr.ss_family != AF_UNIX)
	{
		char		host[NI_MAXHOST];
		char		port[NI_MAXSERV];

		if (pg_getnameinfo_all(&MyBEEntry->st_clientaddr.addr, MyBEEntry->st_clientaddr.salen,
							   host, sizeof(host), port, sizeof(port),
							   NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		{
			char	   *zone = strchr(host, '%');

			/* inet has no zone id (fe80::1%eth0) */
			if (zone != NULL)
				*zone = '\0';
			strlcpy(rec->client_addr, host, sizeof(rec->client_addr));
			rec->client_port = atoi(port);
		}
	}
	if (application_name)
		strlcpy(rec->application_name, application_name, sizeof(rec->application_name));
}

/*
 * The tenant and app user of a record: those of the context in force right
 * now, and only if it verifies in this database (context.c: no error, no
 * lookup).  A context that does not verify (a token of another database,
 * expired, a tenant not active, a role bound elsewhere) files the record
 * under no tenant, with what it claimed in the detail.  Returns that detail
 * (static) or NULL.
 */
static const char *
fill_attribution(AlogRecord *rec)
{
	static char why_buf[ALOG_DETAIL_LEN];
	int64		tenant = 0;
	const char *app_user = NULL;
	const char *why = NULL;

	rec->has_tenant = false;
	rec->tenant = 0;
	rec->app_user[0] = '\0';
	switch (utilix_context_for_log(&tenant, &app_user, &why))
	{
		case UTILIX_LOGCTX_VERIFIED:
			rec->has_tenant = true;
			rec->tenant = tenant;
			strlcpy(rec->app_user, app_user, sizeof(rec->app_user));
			return NULL;
		case UTILIX_LOGCTX_REFUSED:
			snprintf(why_buf, sizeof(why_buf),
					 "tenant context not accepted (%s); it claims tenant " INT64_FORMAT ", app user %.100s",
					 why, tenant, app_user ? app_user : "");
			return why_buf;
		default:
			return NULL;
	}
}

static void
copy_session(AlogRecord *rec, const AlogRecord *who)
{
	rec->client_port = who->client_port;
	memcpy(rec->session_role, who->session_role, sizeof(rec->session_role));
	memcpy(rec->current_role, who->current_role, sizeof(rec->current_role));
	memcpy(rec->client_addr, who->client_addr, sizeof(rec->client_addr));
	memcpy(rec->application_name, who->application_name, sizeof(rec->application_name));
}

/* =====================================================================
 * Which tables are protected (per backend, rebuilt when utilix's catalogs
 * change)
 * ===================================================================== */

static void
prot_reload(void)
{
	HASHCTL		ctl;
	Oid			save_userid;
	int			save_sec;
	MemoryContext old = CurrentMemoryContext;

	if (prot_map != NULL)
		hash_destroy(prot_map);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(ProtEntry);
	ctl.hcxt = TopMemoryContext;
	prot_map = hash_create("utilix protected tables", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	prot_count = 0;
	prot_generation = utilix_cache_generation;
	if (!OidIsValid(utilix_catalog_relid("protected_table")))
		return;

	prot_loading = true;
	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT p.relid, p.access_log, "
						"pg_catalog.format('%I.%I', p.schema_name, p.table_name), c.relkind "
						"FROM utilix.protected_table p JOIN pg_catalog.pg_class c ON c.oid = p.relid",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read utilix.protected_table");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			char	   *mode = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
			bool		found;
			ProtEntry  *e = hash_search(prot_map, &relid, HASH_ENTER, &found);

			e->mode = ALOG_MODE_DEFAULT;
			if (mode != NULL)
				e->mode = strcmp(mode, "off") == 0 ? ALOG_MODE_OFF :
					strcmp(mode, "writes") == 0 ? ALOG_MODE_WRITES : ALOG_MODE_ALL;
			/* quoted names can be longer than the field: cut at a character boundary */
			if (name == NULL)
				e->name[0] = '\0';
			else
			{
				int			cut = pg_mbcliplen(name, strlen(name), sizeof(e->name) - 1);

				memcpy(e->name, name, cut);
				e->name[cut] = '\0';
			}
			e->relkind = DatumGetChar(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &isnull));
			prot_count++;
		}
		SPI_finish();
	}
	PG_CATCH();
	{
		prot_loading = false;
		utilix_end_internal(save_userid, save_sec);
		/* an unreadable catalog: try again at the next statement */
		prot_generation = 0;
		PG_RE_THROW();
	}
	PG_END_TRY();
	utilix_end_internal(save_userid, save_sec);
	prot_loading = false;
	MemoryContextSwitchTo(old);
}

static ProtEntry *
prot_lookup(Oid relid)
{
	if (prot_map == NULL || prot_count == 0)
		return NULL;
	return hash_search(prot_map, &relid, HASH_FIND, NULL);
}

/*
 * Is capture on for this backend and statement at all?  Cheap; true only
 * where records can be made.
 */
static bool
capture_enabled(void)
{
	/*
	 * A parallel worker records what functions it runs read (the leader sees
	 * only its own range table); the plan fragment itself is the leader's.
	 */
	if (alog == NULL || in_alog_worker || prot_loading || (IsParallelWorker() && hook_depth == 0) ||
		!IsNormalProcessingMode() || !OidIsValid(MyDatabaseId))
		return false;
	if (MyBgworkerEntry != NULL && strcmp(MyBgworkerEntry->bgw_library_name, "utilix") == 0)
		return false;
	if (utilix_internal_depth_active())
		return false;
	if (!IsTransactionState())
		return false;
	if (prot_generation != utilix_cache_generation)
		prot_reload();
	return prot_count > 0;
}

/* In an error path: only what is already known, no catalog access. */
static bool
capture_enabled_quiet(void)
{
	if (alog == NULL || in_alog_worker || prot_loading || (IsParallelWorker() && hook_depth == 0) ||
		!OidIsValid(MyDatabaseId) || utilix_internal_depth_active())
		return false;
	if (MyBgworkerEntry != NULL && strcmp(MyBgworkerEntry->bgw_library_name, "utilix") == 0)
		return false;
	return prot_generation == utilix_cache_generation && prot_count > 0;
}

/* =====================================================================
 * The pending record of the current statement
 * ===================================================================== */

static int64
xact_stat(PGFunction fn, Oid relid)
{
	return DatumGetInt64(DirectFunctionCall1(fn, ObjectIdGetDatum(relid)));
}

static void
pending_start(int kind)
{
	if (pending.active)
		return;
	memset(&pending, 0, offsetof(typeof(pending), tables));
	pending.active = true;
	pending.kind = top_kind >= 0 ? top_kind : kind;
	/*
	 * Who did it is taken now, in a healthy state: a statement that clears or
	 * swaps its context, or fails inside a SECURITY DEFINER function, cannot
	 * move its own record.
	 */
	memset(&pending.who, 0, sizeof(pending.who));
	fill_session(&pending.who, false);
	pending.at = GetCurrentTimestamp();
	pending.queryid = pgstat_get_my_query_id();
	pending.query[0] = '\0';
	if (alog_query_text && debug_query_string != NULL)
	{
		char	   *masked = utilix_normalise_query(debug_query_string);

		strlcpy(pending.query, masked, sizeof(pending.query));
		pfree(masked);
	}
}

static PendingTable *
pending_add(ProtEntry *e, Oid relid)
{
	PendingTable *t;

	for (int i = 0; i < pending.ntables; i++)
		if (pending.tables[i].relid == relid)
		{
			pending.tables[i].touched = true;
			return &pending.tables[i];
		}
	if (pending.ntables >= MAX_PENDING_TABLES)
	{
		pending.untracked++;
		return NULL;
	}
	t = &pending.tables[pending.ntables++];
	t->relid = relid;
	t->mode = e->mode;
	t->relkind = e->relkind;
	strlcpy(t->name, e->name, sizeof(t->name));
	t->base_ins = xact_stat(pg_stat_get_xact_tuples_inserted, relid);
	t->base_upd = xact_stat(pg_stat_get_xact_tuples_updated, relid);
	t->base_del = xact_stat(pg_stat_get_xact_tuples_deleted, relid);
	t->nread = 0;
	t->touched = true;
	return t;
}

/* a partitioned table: its protected partitions take the rows */
static void
pending_add_with_partitions(ProtEntry *e, Oid relid)
{
	(void) pending_add(e, relid);
	if (e->relkind == RELKIND_PARTITIONED_TABLE)
	{
		List	   *parts = find_all_inheritors(relid, NoLock, NULL);
		ListCell   *lc;

		foreach(lc, parts)
		{
			Oid			p = lfirst_oid(lc);
			ProtEntry  *pe = prot_lookup(p);

			if (p != relid && pe != NULL)
				(void) pending_add(pe, p);
		}
	}
}

static int
effective_mode(int table_mode)
{
	return table_mode == ALOG_MODE_DEFAULT ? alog_mode : table_mode;
}

static bool
denied_code(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
}

/* One record at a time; static: flushing runs in hooks, error paths and the setting's assign hook. */
static AlogRecord flush_rec;

/*
 * Turn what the pending statement did since the last change of context
 * into records, filed under the context in force now: one per eight
 * tables.  A table whose setting does not ask for this kind of access is
 * left out; a part with no table makes no record.
 *
 * final: the statement is over.  Otherwise the context is about to change
 * (utilix_access_log_context_changing): the rows so far are filed now, and
 * the counting starts again for the next context.  Such a part makes a
 * record only when it read or changed rows, or a refusal was caught in it.
 * Allocates nothing and raises nothing.
 */
static void
alog_segment(bool final, int outcome, int sqlerrcode)
{
	AlogRecord *rec = &flush_rec;
	const char *why;
	int			n = 0;
	bool		any_rows = false;
	bool		emit;
	uint64		seq = 0;
	int64		ins[MAX_PENDING_TABLES];
	int64		upd[MAX_PENDING_TABLES];
	int64		del[MAX_PENDING_TABLES];

	if (!pending.active)
		return;
	if (final)
		pending.active = false;
	if (alog == NULL)
		return;

	for (int i = 0; i < pending.ntables; i++)
	{
		PendingTable *t = &pending.tables[i];
		int64		ci = xact_stat(pg_stat_get_xact_tuples_inserted, t->relid);
		int64		cu = xact_stat(pg_stat_get_xact_tuples_updated, t->relid);
		int64		cd = xact_stat(pg_stat_get_xact_tuples_deleted, t->relid);

		/* (a TRUNCATE in the transaction resets the counters: never below zero) */
		ins[i] = Max(ci - t->base_ins, 0);
		upd[i] = Max(cu - t->base_upd, 0);
		del[i] = Max(cd - t->base_del, 0);
		t->base_ins = ci;
		t->base_upd = cu;
		t->base_del = cd;
		any_rows |= (t->nread > 0 || ins[i] > 0 || upd[i] > 0 || del[i] > 0);
	}
	if (!final)
	{
		/* a refusal caught in this part is this part's outcome */
		outcome = pending.caught_code != 0 ? ALOG_DENIED : ALOG_OK;
		sqlerrcode = pending.caught_code;
	}
	emit = final || any_rows || pending.caught_code != 0;
	memset(rec, 0, sizeof(AlogRecord));
	why = emit ? fill_attribution(rec) : NULL;

	for (int i = 0; emit && i < pending.ntables; i++)
	{
		PendingTable *t = &pending.tables[i];
		int			mode = effective_mode(t->mode);
		bool		counted = (t->nread > 0 || ins[i] > 0 || upd[i] > 0 || del[i] > 0);
		bool		is_write = (ins[i] > 0 || upd[i] > 0 || del[i] > 0 || pending.writes);

		if (mode == ALOG_MODE_OFF || (mode == ALOG_MODE_WRITES && !is_write))
			continue;
		/* a partitioned parent whose rows all went to partitions */
		if (t->relkind == RELKIND_PARTITIONED_TABLE && !counted)
			continue;
		/*
		 * A table of an earlier part of the statement, untouched since: only
		 * in a record of failure, which names everything the statement held.
		 */
		if (!counted && !t->touched && !(final && outcome != ALOG_OK))
			continue;
		if (n == ALOG_MAX_TABLES)
		{
			rec->ntables = n;
			seq = alog_enqueue(rec);
			memset(rec->tables, 0, sizeof(rec->tables));
			n = 0;
		}
		if (n == 0)
		{
			copy_session(rec, &pending.who);
			rec->at = pending.at;
			rec->kind = pending.kind;
			rec->outcome = outcome;
			rec->sqlerrcode = sqlerrcode;
			rec->queryid = pending.queryid;
			strlcpy(rec->query, pending.query, sizeof(rec->query));
			rec->detail[0] = '\0';
			if (why != NULL)
				strlcpy(rec->detail, why, sizeof(rec->detail));
			if (pending.note != NULL)
				snprintf(rec->detail + strlen(rec->detail), sizeof(rec->detail) - strlen(rec->detail),
						 "%s%s", rec->detail[0] ? "; " : "", pending.note);
			if (pending.untracked > 0)
				snprintf(rec->detail + strlen(rec->detail), sizeof(rec->detail) - strlen(rec->detail),
						 "%s%d more protected tables touched than one record can follow (their rows are not counted)",
						 rec->detail[0] ? "; " : "", pending.untracked);
			if (pending.notes_lost)
				snprintf(rec->detail + strlen(rec->detail), sizeof(rec->detail) - strlen(rec->detail),
						 "%sthe rows of some queries could not be counted (out of memory)",
						 rec->detail[0] ? "; " : "");
		}
		strlcpy(rec->tables[n].name, t->name, ALOG_NAME_LEN);
		rec->tables[n].nread = t->nread;
		rec->tables[n].ninserted = ins[i];
		rec->tables[n].nupdated = upd[i];
		rec->tables[n].ndeleted = del[i];
		n++;
	}
	if (n > 0)
	{
		rec->ntables = n;
		seq = alog_enqueue(rec);
	}
	/* the next part counts from here */
	for (int i = 0; i < pending.ntables; i++)
	{
		pending.tables[i].nread = 0;
		pending.tables[i].touched = false;
	}
	pending.caught_code = 0;
	if (seq != 0)
	{
		my_last_seq = seq;
		my_sync_wait = alog_sync;
	}
}

static void
alog_flush(int outcome, int sqlerrcode)
{
	alog_segment(true, outcome, sqlerrcode);
}

/*
 * An error inside the statement, in a function or trigger, on its way up.
 * If a handler catches it, the statement goes on; a refusal among them
 * still makes the statement's record "denied".
 */
static void
note_nested_error(void)
{
	int			code = geterrcode();

	if (pending.active && denied_code(code) && pending.caught_code == 0)
		pending.caught_code = code;
}

/* The statement is over: flush and, in sync mode, wait (not from an error path). */
static void
alog_statement_done(void)
{
	/* a context set part-way and not verified since (cheap when it was) */
	if (pending.active)
		utilix_context_verify_for_log();
	if (pending.active && pending.caught_code != 0)
		alog_flush(ALOG_DENIED, pending.caught_code);
	else
		alog_flush(ALOG_OK, 0);
	top_kind = -1;
	if (my_sync_wait && my_last_seq != 0)
	{
		my_sync_wait = false;
		alog_wait_committed(my_last_seq);
	}
}

static void
alog_statement_failed(void)
{
	int			code = geterrcode();

	/* a refusal caught inside, then another error: the refusal is what matters */
	if (!denied_code(code) && pending.active && pending.caught_code != 0)
		code = pending.caught_code;
	alog_flush(denied_code(code) ? ALOG_DENIED : ALOG_ERROR, code);
	top_kind = -1;
	my_sync_wait = false;
}

/* =====================================================================
 * Executor hooks
 * ===================================================================== */

/*
 * In a hook's PG_CATCH: the outermost hook records the statement as failed;
 * an inner one notes a refusal in case a handler catches it.
 */
static void
hook_failed(void)
{
	hook_depth--;
	/* (utilix's own lookups are no statement: the statement that runs them goes on, or fails itself) */
	if (hook_depth == 0 && !utilix_internal_depth_active())
		alog_statement_failed();
	else
		note_nested_error();
}

static int
kind_of_operation(CmdType op)
{
	switch (op)
	{
		case CMD_INSERT:
			return ALOG_INSERT;
		case CMD_UPDATE:
			return ALOG_UPDATE;
		case CMD_DELETE:
			return ALOG_DELETE;
		case CMD_MERGE:
			return ALOG_MERGE;
		default:
			return ALOG_SELECT;
	}
}

/*
 * The kind of a planned statement: a SELECT whose WITH clause changes rows
 * is recorded as the change (the first data-modifying CTE's).
 */
static int
kind_of_statement(PlannedStmt *ps)
{
	ListCell   *lc;

	if (ps->commandType != CMD_SELECT || !ps->hasModifyingCTE)
		return kind_of_operation(ps->commandType);
	foreach(lc, ps->subplans)
	{
		Plan	   *plan = (Plan *) lfirst(lc);

		if (plan != NULL && IsA(plan, ModifyTable))
			return kind_of_operation(((ModifyTable *) plan)->operation);
	}
	return ALOG_SELECT;
}

static bool
is_protected_scan(PlanState *ps, EState *estate, Oid *relid)
{
	Plan	   *plan = ps->plan;

	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
			{
				Index		scanrelid = ((Scan *) plan)->scanrelid;
				RangeTblEntry *rte;

				if (scanrelid == 0 || scanrelid > (Index) list_length(estate->es_range_table))
					return false;
				rte = exec_rt_fetch(scanrelid, estate);
				if (rte->rtekind != RTE_RELATION || prot_lookup(rte->relid) == NULL)
					return false;
				*relid = rte->relid;
				return true;
			}
		default:
			return false;
	}
}

/*
 * Instrumentation was asked for on our behalf: keep it only on the scans of
 * protected tables, so that every other node runs at full speed.  Under a
 * Gather the workers report into every node's instrumentation, so that
 * subtree keeps it.
 */
static bool
strip_instrumentation(PlanState *ps, void *context)
{
	EState	   *estate = (EState *) context;
	Oid			relid;

	if (ps == NULL)
		return false;
	if (IsA(ps, GatherState) || IsA(ps, GatherMergeState))
		return false;
	if (!is_protected_scan(ps, estate, &relid))
		ps->instrument = NULL;
	return planstate_tree_walker(ps, strip_instrumentation, context);
}

typedef struct ReadCount
{
	EState	   *estate;
	bool		reset;
} ReadCount;

static bool
collect_reads(PlanState *ps, void *context)
{
	ReadCount  *rc = (ReadCount *) context;
	Oid			relid;

	if (ps == NULL)
		return false;
	if (ps->instrument != NULL && is_protected_scan(ps, rc->estate, &relid))
	{
		ProtEntry  *e = prot_lookup(relid);
		PendingTable *t = e ? pending_add(e, relid) : NULL;
		double		rows = ps->instrument->ntuples + ps->instrument->tuplecount;

		if (t != NULL)
			t->nread += (int64) rows;
		if (rc->reset)
		{
			ps->instrument->ntuples = 0;
			ps->instrument->tuplecount = 0;
		}
	}
	return planstate_tree_walker(ps, collect_reads, context);
}

/* What this backend knows of each running query: do we count it, do we own the instrumentation */
typedef struct QueryNote
{
	QueryDesc  *qd;
	SubTransactionId subxid;	/* forgotten when this subtransaction aborts */
	bool		counted;
	bool		owns_instrument;
	int			running;		/* inside its ExecutorRun (so its QueryDesc is alive) */
} QueryNote;

/*
 * As many as there are open queries and cursors: grown in TopMemoryContext,
 * never a fixed limit (a query that is not noted is not counted).
 */
static QueryNote *notes = NULL;
static int	nnotes = 0;
static int	maxnotes = 0;

/* A new note, or NULL when memory is short (never an error). */
static QueryNote *
note_new(void)
{
	if (nnotes >= maxnotes)
	{
		int			newmax = Max(maxnotes * 2, 64);
		QueryNote  *grown;

		if (notes == NULL)
			grown = MemoryContextAllocExtended(TopMemoryContext, sizeof(QueryNote) * newmax,
											   MCXT_ALLOC_NO_OOM);
		else
			grown = repalloc_extended(notes, sizeof(QueryNote) * newmax, MCXT_ALLOC_NO_OOM);
		if (grown == NULL)
			return NULL;
		notes = grown;
		maxnotes = newmax;
	}
	return &notes[nnotes++];
}

static QueryNote *
note_for(QueryDesc *qd)
{
	for (int i = nnotes - 1; i >= 0; i--)
		if (notes[i].qd == qd)
			return &notes[i];
	return NULL;
}

static void
note_forget(QueryDesc *qd)
{
	for (int i = nnotes - 1; i >= 0; i--)
		if (notes[i].qd == qd)
		{
			notes[i] = notes[--nnotes];
			return;
		}
}

static void
count_reads(QueryDesc *qd, QueryNote *note)
{
	ReadCount	rc;

	if (note == NULL || !note->counted || qd->planstate == NULL)
		return;
	rc.estate = qd->estate;
	rc.reset = note->owns_instrument;
	(void) collect_reads(qd->planstate, &rc);
}

/*
 * The context is about to change (the assign hook of utilix.context, in
 * context.c): what the pending statement read and wrote so far is filed
 * under the context in force until now, and counting starts again.  The
 * queries running now (only those: their QueryDescs are on the stack) give
 * the rows they have read up to here.  Runs in any state (a savepoint's
 * rollback, a function's settings undone): no catalog access, no
 * allocation, no error.
 */
void
utilix_access_log_context_changing(void)
{
	if (!pending.active || alog == NULL || in_alog_worker)
		return;
	for (int i = 0; i < nnotes; i++)
		if (notes[i].running > 0 && notes[i].owns_instrument)
			count_reads(notes[i].qd, &notes[i]);
	alog_segment(false, ALOG_OK, 0);
}

/* Note the protected tables of a query; true if there is one to record. */
static bool
note_tables(QueryDesc *qd)
{
	ListCell   *lc;
	bool		any = false;
	bool		writes = (qd->operation != CMD_SELECT) || qd->plannedstmt->hasModifyingCTE;

	foreach(lc, qd->plannedstmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
		ProtEntry  *e;

		if (rte->rtekind != RTE_RELATION)
			continue;
		e = prot_lookup(rte->relid);
		if (e == NULL)
			continue;
		if (!any)
		{
			pending_start(kind_of_statement(qd->plannedstmt));
			any = true;
		}
		pending_add_with_partitions(e, rte->relid);
	}
	if (any && writes)
		pending.writes = true;
	/*
	 * The context this query runs under is verified now, while lookups are
	 * safe: nothing else checks it for a role that bypasses row level
	 * security, and a utility statement around the query (CREATE TABLE AS,
	 * REFRESH MATERIALIZED VIEW, ...) can drop the caches before its record
	 * is made.  A few comparisons once the statement has verified it.
	 */
	if (any)
		utilix_context_verify_for_log();
	return any;
}

static void
alog_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	volatile bool counted = false;
	volatile bool owns = false;

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && capture_enabled())
	{
		if (hook_depth == 0 && !pending.active)
			top_kind = kind_of_statement(queryDesc->plannedstmt);
		counted = note_tables(queryDesc);
		if (counted && queryDesc->instrument_options == 0)
		{
			queryDesc->instrument_options = INSTRUMENT_ROWS;
			owns = true;
		}
	}
	hook_depth++;
	PG_TRY();
	{
		if (prev_ExecutorStart)
			prev_ExecutorStart(queryDesc, eflags);
		else
			standard_ExecutorStart(queryDesc, eflags);
	}
	PG_CATCH();
	{
		hook_failed();
		PG_RE_THROW();
	}
	PG_END_TRY();
	hook_depth--;
	if (counted)
	{
		QueryNote  *note = note_for(queryDesc);	/* a QueryDesc's memory used again */

		if (owns && queryDesc->planstate != NULL)
			(void) strip_instrumentation(queryDesc->planstate, queryDesc->estate);

		if (note == NULL)
			note = note_new();
		if (note != NULL)
		{
			note->qd = queryDesc;
			note->subxid = GetCurrentSubTransactionId();
			note->counted = true;
			note->owns_instrument = owns;
			note->running = 0;
		}
		else if (pending.active)
			pending.notes_lost = true;
	}
}

static void
alog_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once)
{
	QueryNote  *volatile note = nnotes > 0 ? note_for(queryDesc) : NULL;

	/* a FETCH from a cursor over protected tables is a statement of its own */
	if (note != NULL && !pending.active && capture_enabled())
	{
		if (hook_depth == 0 && top_kind < 0)
			top_kind = ALOG_SELECT;
		(void) note_tables(queryDesc);
	}
	if (note != NULL)
		note->running++;
	hook_depth++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_CATCH();
	{
		/* nested queries may have moved the note: find it again */
		note = note != NULL ? note_for(queryDesc) : NULL;
		if (note != NULL)
		{
			note->running--;
			if (note->owns_instrument)
				count_reads(queryDesc, note);
		}
		hook_failed();
		PG_RE_THROW();
	}
	PG_END_TRY();
	hook_depth--;
	note = note != NULL ? note_for(queryDesc) : NULL;
	if (note != NULL)
	{
		note->running--;
		if (note->owns_instrument)
			count_reads(queryDesc, note);
	}
}

static void
alog_ExecutorFinish(QueryDesc *queryDesc)
{
	hook_depth++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		hook_failed();
		PG_RE_THROW();
	}
	PG_END_TRY();
	hook_depth--;
}

static void
alog_ExecutorEnd(QueryDesc *queryDesc)
{
	QueryNote  *note = nnotes > 0 ? note_for(queryDesc) : NULL;

	if (note != NULL)
	{
		/* instrumentation shared with EXPLAIN ANALYZE or auto_explain: count once, here */
		if (!note->owns_instrument && pending.active)
			count_reads(queryDesc, note);
		note_forget(queryDesc);
	}
	hook_depth++;
	PG_TRY();
	{
		if (prev_ExecutorEnd)
			prev_ExecutorEnd(queryDesc);
		else
			standard_ExecutorEnd(queryDesc);
	}
	PG_CATCH();
	{
		hook_failed();
		PG_RE_THROW();
	}
	PG_END_TRY();
	hook_depth--;
	/*
	 * The end of the statement, unless this was one of utilix's own lookups
	 * (those run where the statement's hooks are not on the stack, e.g. when
	 * the access log verifies the context before a query starts).
	 */
	if (hook_depth == 0 && !utilix_internal_depth_active())
	{
		if (pending.active)
			alog_statement_done();
		top_kind = -1;
	}
}

/*
 * Planning can fail on protected tables too: the tenant policy's function
 * runs during planning when the planner estimates the index condition, so
 * a statement without a context is refused there.  Such a failure is
 * recorded with the tables the statement named.
 */
static bool
note_query_rtes(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;
		ProtEntry  *e;

		if (rte->rtekind == RTE_RELATION && (e = prot_lookup(rte->relid)) != NULL)
		{
			pending_start(ALOG_SELECT);
			(void) pending_add(e, rte->relid);
		}
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, note_query_rtes, context, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, note_query_rtes, context);
}

static PlannedStmt *
alog_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *result;

	/*
	 * Know the protected tables before planning: the tenant policy can refuse
	 * a statement right here, and the error path must not read a catalog.
	 */
	if (ActiveSnapshotSet() && !prot_loading)
		(void) capture_enabled();
	hook_depth++;
	PG_TRY();
	{
		if (prev_planner)
			result = prev_planner(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_CATCH();
	{
		hook_depth--;
		if (capture_enabled_quiet())
		{
			if (!pending.active)
				top_kind = kind_of_operation(parse->commandType);
			(void) note_query_rtes((Node *) parse, NULL);
			if (parse->commandType != CMD_SELECT)
				pending.writes = true;
			if (hook_depth == 0)
				alog_statement_failed();
			else
				note_nested_error();
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	hook_depth--;
	return result;
}

/* =====================================================================
 * Utility statements: COPY, TRUNCATE, and DDL on protected tables
 * ===================================================================== */

/* Utility statements the access log records or guards. */
static bool
utility_of_interest(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CopyStmt:
		case T_TruncateStmt:
		case T_DropStmt:
		case T_GrantStmt:
			return true;
		default:
			return ddl_relation(stmt) != NULL;
	}
}

/* The one table a DDL statement acts on, for the statements that name one table. */
static RangeVar *
ddl_relation(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
			return ((AlterTableStmt *) stmt)->relation;
		case T_IndexStmt:
			return ((IndexStmt *) stmt)->relation;
		case T_CreatePolicyStmt:
			return ((CreatePolicyStmt *) stmt)->table;
		case T_AlterPolicyStmt:
			return ((AlterPolicyStmt *) stmt)->table;
		case T_CreateTrigStmt:
			return ((CreateTrigStmt *) stmt)->relation;
		case T_RuleStmt:
			return ((RuleStmt *) stmt)->relation;
		case T_RenameStmt:
			return ((RenameStmt *) stmt)->relation;
		default:
			return NULL;
	}
}

static void
note_rangevar(RangeVar *rv, int kind)
{
	Oid			relid;
	ProtEntry  *e;

	if (rv == NULL)
		return;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid) || (e = prot_lookup(relid)) == NULL)
		return;
	pending_start(kind);
	pending.writes = true;
	pending_add_with_partitions(e, relid);
}

static void
note_utility(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CopyStmt:
			{
				CopyStmt   *c = (CopyStmt *) stmt;

				if (top_kind < 0 || top_kind == ALOG_SELECT)
					top_kind = ALOG_COPY;
				if (c->relation != NULL)
				{
					Oid			relid = RangeVarGetRelid(c->relation, NoLock, true);
					ProtEntry  *e = OidIsValid(relid) ? prot_lookup(relid) : NULL;

					if (e != NULL)
					{
						pending_start(ALOG_COPY);
						pending.kind = ALOG_COPY;
						if (c->is_from)
							pending.writes = true;
						pending_add_with_partitions(e, relid);
					}
				}
				break;
			}
		case T_TruncateStmt:
			{
				ListCell   *lc;

				top_kind = ALOG_TRUNCATE;
				foreach(lc, ((TruncateStmt *) stmt)->relations)
					note_rangevar((RangeVar *) lfirst(lc), ALOG_TRUNCATE);
				break;
			}
		case T_DropStmt:
			{
				DropStmt   *d = (DropStmt *) stmt;
				ListCell   *lc;

				if (d->removeType != OBJECT_TABLE)
					break;
				top_kind = ALOG_DDL;
				foreach(lc, d->objects)
					note_rangevar(makeRangeVarFromNameList((List *) lfirst(lc)), ALOG_DDL);
				break;
			}
		case T_GrantStmt:
			{
				GrantStmt  *g = (GrantStmt *) stmt;
				ListCell   *lc;

				if (g->targtype != ACL_TARGET_OBJECT || g->objtype != OBJECT_TABLE)
					break;
				top_kind = ALOG_DDL;
				foreach(lc, g->objects)
					note_rangevar((RangeVar *) lfirst(lc), ALOG_DDL);
				break;
			}
		default:
			{
				RangeVar   *rv = ddl_relation(stmt);

				if (rv != NULL)
				{
					top_kind = ALOG_DDL;
					note_rangevar(rv, ALOG_DDL);
				}
				break;
			}
	}
}

/*
 * FETCH from a cursor held past its transaction: its rows come from the
 * store it was read into at commit (recorded then, under the context of
 * that moment), without the executor.  Each such FETCH is recorded too,
 * under the context in force when it delivers them.
 */
static bool
note_held_fetch(FetchStmt *f)
{
	Portal		portal;
	ListCell   *lc;
	bool		any = false;

	if (f->ismove || f->portalname == NULL || f->portalname[0] == '\0')
		return false;
	portal = GetPortalByName(f->portalname);
	if (!PortalIsValid(portal) || portal->holdStore == NULL || portal->queryDesc != NULL)
		return false;
	foreach(lc, portal->stmts)
	{
		PlannedStmt *ps = lfirst_node(PlannedStmt, lc);
		ListCell   *lr;

		if (ps->commandType == CMD_UTILITY)
			continue;
		foreach(lr, ps->rtable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(lr);
			ProtEntry  *e;

			if (rte->rtekind != RTE_RELATION || (e = prot_lookup(rte->relid)) == NULL)
				continue;
			if (!any)
			{
				/*
				 * No query runs, so nothing has validated the context of this
				 * statement: validate it here (cached lookups; a context that
				 * does not verify gives no tenant, not an error), so that the
				 * record can name the tenant.
				 */
				utilix_context_verify_for_log();
				pending_start(ALOG_SELECT);
				pending.note = "rows fetched from a cursor held past its transaction";
				any = true;
			}
			(void) pending_add(e, rte->relid);
		}
	}
	return any;
}

static void
alog_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	volatile bool held_fetch = false;

	if (alog != NULL && OidIsValid(MyDatabaseId) && IsA(stmt, FetchStmt) &&
		!pending.active && capture_enabled())
		held_fetch = note_held_fetch((FetchStmt *) stmt);

	/*
	 * Only the statements that can touch a protected table are looked at:
	 * reading utilix's catalog takes a snapshot, which must not happen before
	 * BEGIN ISOLATION LEVEL, SET TRANSACTION or a transaction's first LOCK.
	 */
	if (alog != NULL && OidIsValid(MyDatabaseId) && utility_of_interest(stmt))
	{
		guard_access_log_ddl(stmt);
		if (capture_enabled())
		{
			note_utility(stmt);
			/* COPY of a table without row level security runs no query: verify here */
			if (pending.active)
				utilix_context_verify_for_log();
		}
	}
	hook_depth++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		hook_failed();
		PG_RE_THROW();
	}
	PG_END_TRY();
	hook_depth--;
	if (held_fetch && pending.active && qc != NULL)
	{
		for (int i = 0; i < pending.ntables; i++)
			if (pending.tables[i].touched)
				pending.tables[i].nread += (int64) qc->nprocessed;
		if (hook_depth > 0)
			alog_statement_done();	/* a statement of its own, also inside a function */
	}
	if (hook_depth == 0)
	{
		/* COPY TO of a protected table with no row level security: its rows */
		if (pending.active && IsA(stmt, CopyStmt) && !((CopyStmt *) stmt)->is_from && qc != NULL &&
			pending.ntables == 1 && pending.tables[0].nread == 0)
			pending.tables[0].nread = (int64) qc->nprocessed;
		if (pending.active)
			alog_statement_done();
		top_kind = -1;
	}
}

/*
 * Deferred events of the subtransaction that aborts and of those inside it
 * (every later one is inside it), or all of them (InvalidSubTransactionId).
 */
static void
drop_deferred(SubTransactionId from)
{
	DeferredEvent **p = &deferred_events;

	while (*p != NULL)
	{
		DeferredEvent *d = *p;

		if (from == InvalidSubTransactionId || d->subxid >= from)
		{
			*p = d->next;
			pfree(d);
		}
		else
			p = &d->next;
	}
}

/* At commit: the deferred events go to the queue, oldest first (never an error). */
static void
enqueue_deferred(void)
{
	DeferredEvent *rev = NULL;

	while (deferred_events != NULL)
	{
		DeferredEvent *d = deferred_events;

		deferred_events = d->next;
		d->next = rev;
		rev = d;
	}
	while (rev != NULL)
	{
		DeferredEvent *d = rev;

		rev = d->next;
		(void) alog_enqueue(&d->rec);
		pfree(d);
	}
}

/*
 * Anything still pending when a transaction ends (a deferred trigger run
 * at COMMIT, a cursor closed by the commit) is recorded then; an abort
 * records it as failed.
 */
static void
alog_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			drop_deferred(InvalidSubTransactionId);
			log_maintenance = false;
			if (pending.active)
				alog_flush(ALOG_ERROR, ERRCODE_IN_FAILED_SQL_TRANSACTION);
			/* hook_depth stays: a procedure's ROLLBACK aborts under hooks still on the stack */
			top_kind = -1;
			nnotes = 0;
			my_sync_wait = false;
			break;
		case XACT_EVENT_PRE_COMMIT:
			if (pending.active)
				alog_flush(ALOG_OK, 0);
			break;
		case XACT_EVENT_PRE_PREPARE:
			/* a prepared transaction may still roll back: its work cannot be recorded as done */
			if (deferred_events != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that did utilix key, lifecycle or purge work")));
			if (pending.active)
				alog_flush(ALOG_OK, 0);
			log_maintenance = false;
			break;
		case XACT_EVENT_COMMIT:
			nnotes = 0;
			log_maintenance = false;
			enqueue_deferred();
			break;
		default:
			break;
	}
}

/*
 * A subtransaction that aborts (an exception block caught an error) ends
 * its queries without ExecutorEnd: forget them.
 */
static void
alog_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	drop_deferred(mySubid);
	for (int i = nnotes - 1; i >= 0; i--)
		if (notes[i].subxid >= mySubid)
			notes[i] = notes[--nnotes];
}

/* =====================================================================
 * Events recorded by utilix's own functions: logins, administration, keys,
 * purges
 * ===================================================================== */

static int
kind_from_name(const char *s)
{
	for (int i = 0; i < ALOG_NKINDS; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

PG_FUNCTION_INFO_V1(utilix_log_event);
Datum
utilix_log_event(PG_FUNCTION_ARGS)
{
	AlogRecord *rec;
	char	   *kind;
	char	   *outcome;
	int			k;
	uint64		seq;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kind and outcome of an access log event must not be null")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	outcome = text_to_cstring(PG_GETARG_TEXT_PP(2));
	k = kind_from_name(kind);
	if (k < ALOG_LOGIN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a kind of access log event", pnstrdup(kind, pg_mbcliplen(kind, strlen(kind), 64))),
				 errhint("The kinds are login, admin, key, purge and export.")));
	if (strcmp(outcome, "ok") != 0 && strcmp(outcome, "error") != 0 && strcmp(outcome, "denied") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not an outcome of an access log event", pnstrdup(outcome, pg_mbcliplen(outcome, strlen(outcome), 64))),
				 errhint("The outcomes are ok, error and denied.")));
	if (alog == NULL)
		PG_RETURN_BOOL(false);
	rec = palloc0(sizeof(AlogRecord));
	/* events come from utilix's SECURITY DEFINER functions: name their caller */
	fill_session(rec, true);
	/* the app user of the context in force, only if it verifies here */
	(void) fill_attribution(rec);
	rec->has_tenant = !PG_ARGISNULL(1);
	rec->tenant = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	rec->kind = k;
	rec->outcome = strcmp(outcome, "ok") == 0 ? ALOG_OK :
		strcmp(outcome, "denied") == 0 ? ALOG_DENIED : ALOG_ERROR;
	if (rec->outcome == ALOG_DENIED)
		rec->sqlerrcode = ERRCODE_INSUFFICIENT_PRIVILEGE;
	if (!PG_ARGISNULL(3))
		text_to_cstring_buffer(PG_GETARG_TEXT_PP(3), rec->detail, sizeof(rec->detail));
	if (!PG_ARGISNULL(4))
		text_to_cstring_buffer(PG_GETARG_TEXT_PP(4), rec->app_user, sizeof(rec->app_user));
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5) && PG_GETARG_BOOL(5))
	{
		/* a record of work this transaction does: kept only if it commits */
		DeferredEvent *d = MemoryContextAlloc(TopMemoryContext, sizeof(DeferredEvent));

		memcpy(&d->rec, rec, sizeof(AlogRecord));
		d->subxid = GetCurrentSubTransactionId();
		d->next = deferred_events;
		deferred_events = d;
		pfree(rec);
		PG_RETURN_BOOL(true);
	}
	seq = alog_enqueue(rec);
	pfree(rec);
	if (seq != 0 && alog_sync)
		alog_wait_committed(seq);
	PG_RETURN_BOOL(true);
}

/* Wait until every record this backend queued so far is committed (tests, operators). */
PG_FUNCTION_INFO_V1(utilix_access_log_flush);
Datum
utilix_access_log_flush(PG_FUNCTION_ARGS)
{
	int			timeout_ms = PG_ARGISNULL(0) ? 10000 : PG_GETARG_INT32(0);
	TimestampTz start = GetCurrentTimestamp();
	uint64		upto;

	if (alog == NULL)
		PG_RETURN_BOOL(false);
	LWLockAcquire(alog->lock, LW_SHARED);
	upto = alog->next_seq - 1;
	LWLockRelease(alog->lock);
	for (;;)
	{
		bool		done = true;

		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(alog->lock, LW_SHARED);
		for (int i = 0; i < alog->nslots && done; i++)
			if (alog_slots[i].state != SLOT_FREE && alog_slots[i].rec.dboid == MyDatabaseId &&
				alog_slots[i].rec.seq <= upto)
				done = false;
		LWLockRelease(alog->lock);
		/* spilled records too (on a primary: a standby's spill waits for an operator) */
		if (done && !RecoveryInProgress())
		{
			char		path[MAXPGPATH];

			done = !next_spill_file(MyDatabaseId, path, sizeof(path));
		}
		if (done)
			PG_RETURN_BOOL(true);
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), timeout_ms))
			PG_RETURN_BOOL(false);
		LWLockAcquire(alog->lock, LW_EXCLUSIVE);
		ensure_writer_locked(MyDatabaseId);
		LWLockRelease(alog->lock);
		ConditionVariablePrepareToSleep(&alog->done_cv);
		(void) ConditionVariableTimedSleep(&alog->done_cv, 50, PG_WAIT_EXTENSION);
		ConditionVariableCancelSleep();
	}
}

PG_FUNCTION_INFO_V1(utilix_access_log_status);
Datum
utilix_access_log_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[12];
	bool		nulls[12];
	int			depth_db = 0;
	int			depth_all = 0;
	TimestampTz oldest = 0;
	AlogWriter	w;
	bool		have_w = false;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(nulls, 0, sizeof(nulls));
	if (alog == NULL)
		utilix_require_preload();
	LWLockAcquire(alog->lock, LW_SHARED);
	for (int i = 0; i < alog->nslots; i++)
	{
		AlogSlot   *s = &alog_slots[i];

		if (s->state == SLOT_FREE)
			continue;
		depth_all++;
		if (s->rec.dboid == MyDatabaseId)
		{
			depth_db++;
			if (oldest == 0 || s->rec.at < oldest)
				oldest = s->rec.at;
		}
	}
	{
		AlogWriter *wp = writer_for(MyDatabaseId, false);

		if (wp != NULL)
		{
			w = *wp;
			have_w = true;
		}
	}
	LWLockRelease(alog->lock);
	values[0] = Int32GetDatum(alog->nslots);
	values[1] = Int32GetDatum(depth_db);
	values[2] = Int32GetDatum(depth_all);
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&alog->queued));
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&alog->written));
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&alog->spilled));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&alog->loaded));
	values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&alog->lost));
	values[8] = Int64GetDatum((int64) pg_atomic_read_u64(&alog->waits));
	if (have_w && w.state == WRITER_RUNNING)
		values[9] = Int32GetDatum(w.pid);
	else
		nulls[9] = true;
	if (have_w && w.last_write != 0)
		values[10] = TimestampTzGetDatum(w.last_write);
	else
		nulls[10] = true;
	if (oldest != 0)
	{
		Interval   *lag = DatumGetIntervalP(DirectFunctionCall2(timestamp_mi,
																TimestampTzGetDatum(GetCurrentTimestamp()),
																TimestampTzGetDatum(oldest)));

		values[11] = IntervalPGetDatum(lag);
	}
	else
		nulls[11] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* =====================================================================
 * The chain: SHA-256 over a canonical form of each record
 * ===================================================================== */

/*
 * The canonical form: every field as <length>:<text>; in a fixed order.
 * The same function serves the writer and utilix.verify_access_log(), and
 * README documents it for verification outside the database.
 */
static void
canon_field(StringInfo buf, const char *s, bool isnull)
{
	if (isnull)
	{
		appendStringInfoString(buf, "-;");
		return;
	}
	appendStringInfo(buf, "%zu:", strlen(s));
	appendStringInfoString(buf, s);
	appendStringInfoChar(buf, ';');
}

#define CANON_NFIELDS 19

static const char *const canon_columns[CANON_NFIELDS] = {
	"id", "at", "tenant_id", "app_user", "session_role", "db_role",
	"client_addr", "client_port", "application_name", "backend_pid", "kind",
	"tables", "outcome", "sqlstate", "query_id", "query", "detail", "record_id",
	"prev_hash"
};

static char *
canonical_text(char *const *fields, const bool *nulls, const uint8 *prev, size_t prevlen)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "utilix-access-log-v1;");
	for (int i = 0; i < CANON_NFIELDS - 1; i++)
		canon_field(&buf, fields[i], nulls[i]);
	/* the previous hash, in hex */
	appendStringInfo(&buf, "%zu:", prevlen * 2);
	for (size_t i = 0; i < prevlen; i++)
		appendStringInfo(&buf, "%02x", prev[i]);
	appendStringInfoChar(&buf, ';');
	return buf.data;
}

static void
canonical_hash(char *const *fields, const bool *nulls, const uint8 *prev, size_t prevlen,
			   uint8 out[32])
{
	char	   *text = canonical_text(fields, nulls, prev, prevlen);

	utilix_sha256((const uint8 *) text, strlen(text), out);
	pfree(text);
}

/* The canonical fields of a stored row. */
static char *
row_canonical(HeapTupleHeader row)
{
	char	   *fields[CANON_NFIELDS];
	bool		nulls[CANON_NFIELDS];
	bytea	   *prev = NULL;
	TupleDesc	td = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(row),
											HeapTupleHeaderGetTypMod(row));
	char	   *res;

	for (int i = 0; i < CANON_NFIELDS; i++)
	{
		bool		isnull;
		Datum		d = GetAttributeByName(row, canon_columns[i], &isnull);
		Oid			typid = InvalidOid;
		Oid			outfn;
		bool		varlena;

		nulls[i] = isnull;
		fields[i] = NULL;
		if (isnull)
			continue;
		if (i == CANON_NFIELDS - 1)
		{
			prev = DatumGetByteaPP(d);
			continue;
		}
		if (i == 1)
		{
			/* timestamps as microseconds since 2000-01-01 UTC: no time zone or DateStyle */
			fields[i] = psprintf(INT64_FORMAT, (int64) DatumGetTimestampTz(d));
			continue;
		}
		for (int a = 0; a < td->natts; a++)
			if (strcmp(NameStr(TupleDescAttr(td, a)->attname), canon_columns[i]) == 0)
				typid = TupleDescAttr(td, a)->atttypid;
		if (!OidIsValid(typid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the row has no column \"%s\"", canon_columns[i])));
		getTypeOutputInfo(typid, &outfn, &varlena);
		fields[i] = OidOutputFunctionCall(outfn, d);
	}
	ReleaseTupleDesc(td);
	if (prev != NULL)
		res = canonical_text(fields, nulls, (uint8 *) VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev));
	else
		res = canonical_text(fields, nulls, NULL, 0);
	return res;
}

PG_FUNCTION_INFO_V1(utilix_access_log_canonical);
Datum
utilix_access_log_canonical(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(row_canonical(PG_GETARG_HEAPTUPLEHEADER(0))));
}

/*
 * Set by utilix._access_log_maintain() and _access_log_partitions() around
 * their own DDL on the log; cleared at the end of the transaction whatever
 * happens, so an error cannot leave it on.
 */
PG_FUNCTION_INFO_V1(utilix_access_log_maintenance);
Datum
utilix_access_log_maintenance(PG_FUNCTION_ARGS)
{
	bool		was = log_maintenance;

	if (!PG_ARGISNULL(0))
		log_maintenance = PG_GETARG_BOOL(0);
	PG_RETURN_BOOL(was);
}

/*
 * Is this one of the access log's tables (the log, a day of it, its chain
 * heads and anchors)?  ALTER TABLE and renames of them are refused, so that
 * no one detaches a day, disables a trigger or turns a table into
 * something else; the log's own maintenance is let through.
 */
static bool
is_access_log_relation(RangeVar *rv)
{
	Oid			relid;
	Oid			nsp;
	char	   *name;

	if (rv == NULL)
		return false;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid))
		return false;
	nsp = get_namespace_oid("utilix", true);
	if (!OidIsValid(nsp) || get_rel_namespace(relid) != nsp)
		return false;
	name = get_rel_name(relid);
	return name != NULL && strncmp(name, "access_log", 10) == 0;
}

static void
guard_access_log_ddl(Node *stmt)
{
	if (log_maintenance || creating_extension)
		return;
	if (IsA(stmt, DropStmt))
	{
		DropStmt   *d = (DropStmt *) stmt;
		ListCell   *lc;

		/* DROP TRIGGER / POLICY / RULE name ON table: the table is the name list less its last */
		if (d->removeType == OBJECT_TRIGGER || d->removeType == OBJECT_POLICY || d->removeType == OBJECT_RULE)
			foreach(lc, d->objects)
			{
				List	   *names = (List *) lfirst(lc);

				if (list_length(names) >= 2 &&
					is_access_log_relation(makeRangeVarFromNameList(list_truncate(list_copy(names),
																				  list_length(names) - 1))))
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("the tables of the access log cannot be altered"),
							 errhint("The access log is append-only; only its retention removes days.")));
			}
		return;
	}
	if (is_access_log_relation(ddl_relation(stmt)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the tables of the access log cannot be altered"),
				 errhint("The access log is append-only; only its retention removes days.")));
}

PG_FUNCTION_INFO_V1(utilix_access_log_hash);
Datum
utilix_access_log_hash(PG_FUNCTION_ARGS)
{
	char	   *text = row_canonical(PG_GETARG_HEAPTUPLEHEADER(0));
	bytea	   *res = palloc(VARHDRSZ + 32);

	utilix_sha256((const uint8 *) text, strlen(text), (uint8 *) VARDATA(res));
	SET_VARSIZE(res, VARHDRSZ + 32);
	pfree(text);
	PG_RETURN_BYTEA_P(res);
}

/* =====================================================================
 * The writer
 * ===================================================================== */

static AlogWriter *my_writer = NULL;
static void gather_delay(void);
static Oid	my_writer_db = InvalidOid;

static void
writer_detach(int code, Datum arg)
{
	if (alog == NULL)
		return;
	LWLockAcquire(alog->lock, LW_EXCLUSIVE);
	/* records taken but not committed go back to the queue */
	for (int i = 0; i < alog->nslots; i++)
		if (alog_slots[i].state == SLOT_TAKEN && alog_slots[i].rec.dboid == my_writer_db)
			alog_slots[i].state = SLOT_READY;
	if (my_writer != NULL && my_writer->pid == MyProcPid)
	{
		/* the slot is free for any database (records left start a new writer) */
		my_writer->state = WRITER_NONE;
		my_writer->pid = 0;
		my_writer->latch = NULL;
		my_writer->dboid = InvalidOid;
	}
	LWLockRelease(alog->lock);
	ConditionVariableBroadcast(&alog->done_cv);
}

static int
cmp_seq(const void *a, const void *b)
{
	uint64		x = (*(AlogRecord *const *) a)->seq;
	uint64		y = (*(AlogRecord *const *) b)->seq;

	return x < y ? -1 : x > y ? 1 : 0;
}

typedef struct TakenBatch
{
	int			n;
	int			cap;			/* records the buffers hold */
	int		   *slot;
	AlogRecord *recs;
} TakenBatch;

/* Take up to alog_batch ready records of this database, oldest first. */
static void
take_batch(TakenBatch *b)
{
	AlogRecord **ptrs;
	int			n = 0;

	b->n = 0;
	ptrs = palloc(sizeof(AlogRecord *) * alog->nslots);
	LWLockAcquire(alog->lock, LW_EXCLUSIVE);
	for (int i = 0; i < alog->nslots; i++)
		if (alog_slots[i].state == SLOT_READY && alog_slots[i].rec.dboid == my_writer_db)
			ptrs[n++] = &alog_slots[i].rec;
	if (n > 0)
	{
		qsort(ptrs, n, sizeof(AlogRecord *), cmp_seq);
		if (n > Min(alog_batch, b->cap))
			n = Min(alog_batch, b->cap);
		for (int i = 0; i < n; i++)
		{
			AlogSlot   *s = (AlogSlot *) ((char *) ptrs[i] - offsetof(AlogSlot, rec));

			b->slot[i] = (int) (s - alog_slots);
			memcpy(&b->recs[i], ptrs[i], sizeof(AlogRecord));
			s->state = SLOT_TAKEN;
		}
	}
	/* nothing ready: from now on a new record wakes the writer */
	if (n == 0 && my_writer != NULL)
		my_writer->idle = true;
	LWLockRelease(alog->lock);
	pfree(ptrs);
	b->n = n;
}

static void
release_batch(TakenBatch *b, bool committed, bool lost)
{
	uint64		maxseq = 0;

	LWLockAcquire(alog->lock, LW_EXCLUSIVE);
	for (int i = 0; i < b->n; i++)
	{
		AlogSlot   *s = &alog_slots[b->slot[i]];

		if (committed)
		{
			s->state = SLOT_FREE;
			alog_free_stack[alog->nfree++] = b->slot[i];
			if (b->recs[i].seq > maxseq)
				maxseq = b->recs[i].seq;
		}
		else
			s->state = SLOT_READY;
	}
	if (committed && my_writer != NULL)
	{
		/* records of this db below the oldest still queued are all kept */
		uint64		oldest = PG_UINT64_MAX;

		for (int i = 0; i < alog->nslots; i++)
			if (alog_slots[i].state != SLOT_FREE && alog_slots[i].rec.dboid == my_writer_db &&
				alog_slots[i].rec.seq < oldest)
				oldest = alog_slots[i].rec.seq;
		if (oldest == PG_UINT64_MAX)
			my_writer->committed_upto = Max(maxseq, alog->next_seq - 1);
		else
			my_writer->committed_upto = Max(my_writer->committed_upto, oldest - 1);
		my_writer->written += b->n;
		my_writer->last_write = GetCurrentTimestamp();
		my_writer->urgent = false;
	}
	LWLockRelease(alog->lock);
	if (committed)
	{
		pg_atomic_fetch_add_u64(lost ? &alog->lost : &alog->written, b->n);
		ConditionVariableBroadcast(&alog->space_cv);
	}
	ConditionVariableBroadcast(&alog->done_cv);
}

/*
 * The tables as jsonb prints them (keys by length, then bytes; ", " and ": "),
 * so that the stored jsonb and the hashed text agree without a round trip.
 */
static char *
record_tables_json(const AlogRecord *r)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < r->ntables && i < ALOG_MAX_TABLES; i++)
	{
		char		name[ALOG_NAME_LEN];

		strlcpy(name, r->tables[i].name, sizeof(name));
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfo(&buf, "{\"read\": " INT64_FORMAT ", \"table\": ", r->tables[i].nread);
		escape_json(&buf, name);
		appendStringInfo(&buf, ", \"deleted\": " INT64_FORMAT ", \"updated\": " INT64_FORMAT
						 ", \"inserted\": " INT64_FORMAT "}",
						 r->tables[i].ndeleted, r->tables[i].nupdated, r->tables[i].ninserted);
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

static char *
bounded(const char *s, size_t cap)
{
	char	   *r = palloc(cap + 1);

	strlcpy(r, s, cap + 1);
	/* a record truncated in the middle of a multibyte character */
	r[pg_mbcliplen(r, strlen(r), cap)] = '\0';
	return r;
}

static char *
record_uuid(const AlogRecord *r)
{
	return psprintf("%08x-%04x-%04x-%04x-%04x%08x",
					(uint32) (r->epoch >> 32), (uint32) (r->epoch >> 16) & 0xffff,
					(uint32) r->epoch & 0xffff, (uint32) (r->seq >> 48) & 0xffff,
					(uint32) (r->seq >> 32) & 0xffff, (uint32) r->seq);
}


typedef struct ChainHead
{
	int64		tenant;
	int64		last_id;
	int64		added;
	uint8		hash[32];
	size_t		hashlen;
} ChainHead;

/* The head of a tenant's chain in this batch; added when new.  Few tenants per batch: a scan. */
static ChainHead *
chain_head(ChainHead *heads, int *nheads, int64 tenant)
{
	for (int i = *nheads - 1; i >= 0; i--)
		if (heads[i].tenant == tenant)
			return &heads[i];
	memset(&heads[*nheads], 0, sizeof(ChainHead));
	heads[*nheads].tenant = tenant;
	return &heads[(*nheads)++];
}

/* A statement of the writer, prepared once per process and kept. */
static SPIPlanPtr
writer_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "could not keep a plan of the access log writer");
		*slot = p;
	}
	return *slot;
}

/* Days (UTC) for which a partition is known to exist; reset after maintenance. */
static TimestampTz days_known_lo = 0;
static TimestampTz days_known_hi = -1;
static TimestampTz days_pending_lo = 0;
static TimestampTz days_pending_hi = -1;

static TimestampTz
utc_day(TimestampTz t)
{
	return t - (t % USECS_PER_DAY + (t % USECS_PER_DAY < 0 ? USECS_PER_DAY : 0));
}

static Datum
bytea_datum(const uint8 *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}

static Datum
array_of(Datum *values, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		byval;
	char		align;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &byval, &align);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, elemtype, typlen, byval, align));
}

/* the columns of the insert, in order, with their element types */
#define NCOLS 20
static const Oid col_types[NCOLS] = {
	INT8OID, TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
	TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID,
	TEXTOID, BYTEAOID, BYTEAOID
};
static const Oid written_at_type[1] = {TIMESTAMPTZOID};

/* the canonical fields of a record that gets id id */
static void
record_fields(const AlogRecord *r, int64 id, char **f, bool *fn, char *sqlstate)
{
	f[0] = psprintf(INT64_FORMAT, id);
	f[1] = psprintf(INT64_FORMAT, (int64) r->at);
	f[2] = r->has_tenant ? psprintf(INT64_FORMAT, r->tenant) : NULL;
	f[3] = r->app_user[0] ? bounded(r->app_user, ALOG_USER_LEN - 1) : NULL;
	f[4] = r->session_role[0] ? bounded(r->session_role, ALOG_ROLE_LEN - 1) : NULL;
	f[5] = r->current_role[0] ? bounded(r->current_role, ALOG_ROLE_LEN - 1) : NULL;
	f[6] = NULL;
	if (r->client_addr[0])
	{
		/* inet's own text, so that the hash matches what is stored */
		char		addr[ALOG_ADDR_LEN];

		strlcpy(addr, r->client_addr, sizeof(addr));
		f[6] = DatumGetCString(DirectFunctionCall1(inet_out,
												   DirectFunctionCall1(inet_in, CStringGetDatum(addr))));
	}
	f[7] = r->client_addr[0] ? psprintf("%d", r->client_port) : NULL;
	f[8] = r->application_name[0] ? bounded(r->application_name, ALOG_APP_LEN - 1) : NULL;
	f[9] = psprintf("%d", r->pid);
	f[10] = (char *) kind_names[r->kind < ALOG_NKINDS ? r->kind : 0];
	f[11] = record_tables_json(r);
	f[12] = (char *) outcome_names[r->outcome <= ALOG_DENIED ? r->outcome : 1];
	f[13] = NULL;
	if (r->sqlerrcode != 0)
	{
		strlcpy(sqlstate, unpack_sql_state(r->sqlerrcode), 6);
		f[13] = sqlstate;
	}
	f[14] = r->queryid != 0 ? psprintf(INT64_FORMAT, r->queryid) : NULL;
	f[15] = r->query[0] ? bounded(r->query, ALOG_QUERY_LEN - 1) : NULL;
	f[16] = r->detail[0] ? bounded(r->detail, ALOG_DETAIL_LEN - 1) : NULL;
	f[17] = record_uuid(r);
	for (int c = 0; c < CANON_NFIELDS - 1; c++)
		fn[c] = (f[c] == NULL);
}

/* Is this record (from a spill) already in the log? */
static bool
already_logged(const AlogRecord *r, const char *uuid)
{
	static SPIPlanPtr with_tenant = NULL;
	static SPIPlanPtr without_tenant = NULL;
	Oid			t[3] = {TIMESTAMPTZOID, UUIDOID, INT8OID};
	Datum		d[3];
	SPIPlanPtr	plan;

	d[0] = TimestampTzGetDatum(r->at);
	d[1] = DirectFunctionCall1(uuid_in, CStringGetDatum(uuid));
	d[2] = Int64GetDatum(r->tenant);
	/* two statements, so that the (tenant_id, at) index serves both */
	if (r->has_tenant)
		plan = writer_plan(&with_tenant,
						   "SELECT 1 FROM utilix.access_log l WHERE l.tenant_id = $3 AND l.at = $1 AND l.record_id = $2",
						   3, t);
	else
		plan = writer_plan(&without_tenant,
						   "SELECT 1 FROM utilix.access_log l WHERE l.tenant_id IS NULL AND l.at = $1 AND l.record_id = $2",
						   2, t);
	return SPI_execute_plan(plan, d, NULL, true, 1) == SPI_OK_SELECT && SPI_processed > 0;
}

/*
 * Insert records (already in order) into utilix.access_log, chained.  Runs
 * inside a transaction with SPI connected.  With dedupe, records already
 * in the log (loaded twice from a spill file) are skipped.  Four prepared
 * statements per batch, whatever its size: the days, the chain heads, the
 * insert, the new heads.
 */
static void
write_records(AlogRecord *recs, int n, bool dedupe)
{
	static SPIPlanPtr days_plan = NULL;
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr heads_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr advance_plan = NULL;
	static SPIPlanPtr notify_plan = NULL;
	Datum	   *cols[NCOLS];
	bool	   *colnulls[NCOLS];
	Datum		args[NCOLS + 1];
	Oid			argtypes[NCOLS + 1];
	int64		next_id;
	int			m = 0;
	bool		isnull;
	ChainHead  *heads = palloc0(sizeof(ChainHead) * n);
	int			nheads = 0;
	bool	   *kept = palloc0(sizeof(bool) * n);
	/* every record of the batch is written "now": the day partition is today's */
	TimestampTz written_at = GetCurrentTransactionStartTimestamp();
	TimestampTz lo = utc_day(written_at);
	TimestampTz hi = lo;

	for (int i = 0; i < n; i++)
		record_terminate(&recs[i]);
	days_pending_lo = days_known_lo;
	days_pending_hi = days_known_hi;
	if (lo < days_known_lo || hi > days_known_hi)
	{
		Oid			t[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		a[2] = {TimestampTzGetDatum(lo), TimestampTzGetDatum(hi)};

		if (SPI_execute_plan(writer_plan(&days_plan, "SELECT utilix._access_log_partitions($1, $2)", 2, t),
							 a, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not prepare the access log's partitions");
		days_pending_lo = (days_known_hi < days_known_lo) ? lo : Min(lo, days_known_lo);
		days_pending_hi = (days_known_hi < days_known_lo) ? hi : Max(hi, days_known_hi);
		/* only a contiguous range is known: the call made every day from lo to hi */
		if (days_known_hi >= days_known_lo && (hi < days_known_lo - USECS_PER_DAY || lo > days_known_hi + USECS_PER_DAY))
		{
			days_pending_lo = lo;
			days_pending_hi = hi;
		}
	}

	/* one batch at a time appends to the chains; ids continue from the highest head */
	if (SPI_execute_plan(writer_plan(&lock_plan, "LOCK TABLE utilix.access_log_chain IN SHARE ROW EXCLUSIVE MODE", 0, NULL),
						 NULL, NULL, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock utilix.access_log_chain");

	/* the chain heads of the tenants in this batch (0: records of no tenant) */
	for (int i = 0; i < n; i++)
		(void) chain_head(heads, &nheads, recs[i].has_tenant ? recs[i].tenant : 0);
	{
		Datum	   *keys = palloc(sizeof(Datum) * nheads);
		Oid			t[1] = {INT8ARRAYOID};
		Datum		a[1];

		for (int i = 0; i < nheads; i++)
			keys[i] = Int64GetDatum(heads[i].tenant);
		a[0] = array_of(keys, NULL, nheads, INT8OID);
		if (SPI_execute_plan(writer_plan(&heads_plan,
										 "SELECT c.tenant_id, c.last_hash, (SELECT pg_catalog.max(x.last_id) FROM utilix.access_log_chain x) "
										 "FROM (SELECT NULL) dummy LEFT JOIN utilix.access_log_chain c ON c.tenant_id = ANY($1)",
										 1, t),
							 a, NULL, false, 0) != SPI_OK_SELECT || SPI_processed < 1)
			elog(ERROR, "could not read the access log chain");
		next_id = 1;
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			HeapTuple	tup = SPI_tuptable->vals[k];
			TupleDesc	td = SPI_tuptable->tupdesc;
			Datum		maxid = SPI_getbinval(tup, td, 3, &isnull);
			int64		tk;
			Datum		d;

			if (!isnull)
				next_id = DatumGetInt64(maxid) + 1;
			tk = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
			if (isnull)
				continue;
			d = SPI_getbinval(tup, td, 2, &isnull);
			if (!isnull)
			{
				bytea	   *b = DatumGetByteaPP(d);
				ChainHead  *h = chain_head(heads, &nheads, tk);

				h->hashlen = Min(VARSIZE_ANY_EXHDR(b), 32);
				memcpy(h->hash, VARDATA_ANY(b), h->hashlen);
			}
		}
	}

	for (int c = 0; c < NCOLS; c++)
	{
		cols[c] = palloc0(sizeof(Datum) * n);
		colnulls[c] = palloc0(sizeof(bool) * n);
		argtypes[c] = get_array_type(col_types[c]);
	}

	for (int i = 0; i < n; i++)
	{
		AlogRecord *r = &recs[i];
		char	   *f[CANON_NFIELDS];
		bool		fn[CANON_NFIELDS];
		char		sqlstate[6];
		uint8		h[32];
		ChainHead  *head;

		record_fields(r, next_id, f, fn, sqlstate);
		if (dedupe)
		{
			bool		seen = false;

			/* the same record twice in this batch (a spill loaded twice), or already in */
			for (int k = 0; k < i && !seen; k++)
				seen = (kept[k] && recs[k].epoch == r->epoch && recs[k].seq == r->seq);
			if (seen || already_logged(r, f[17]))
				continue;
		}
		kept[i] = true;

		head = chain_head(heads, &nheads, r->has_tenant ? r->tenant : 0);
		canonical_hash(f, fn, head->hash, head->hashlen, h);

		for (int c = 0; c < CANON_NFIELDS - 1; c++)
		{
			colnulls[c][m] = fn[c];
			if (fn[c])
				continue;
			switch (col_types[c])
			{
				case INT8OID:
					cols[c][m] = Int64GetDatum(pg_strtoint64(f[c]));
					break;
				case INT4OID:
					cols[c][m] = Int32GetDatum(pg_strtoint32(f[c]));
					break;
				case TIMESTAMPTZOID:
					cols[c][m] = TimestampTzGetDatum(r->at);
					break;
				default:
					cols[c][m] = CStringGetTextDatum(f[c]);
					break;
			}
		}
		colnulls[18][m] = (head->hashlen == 0);
		if (head->hashlen > 0)
			cols[18][m] = bytea_datum(head->hash, head->hashlen);
		cols[19][m] = bytea_datum(h, 32);

		/* the new head of the chain */
		memcpy(head->hash, h, 32);
		head->hashlen = 32;
		head->last_id = next_id;
		head->added++;

		/* security events go out on NOTIFY too (delivered when the batch commits) */
		if (r->outcome == ALOG_DENIED || r->kind == ALOG_KEY || r->kind == ALOG_PURGE || r->kind == ALOG_EXPORT ||
			(r->kind == ALOG_LOGIN && r->outcome != ALOG_OK))
		{
			StringInfoData p;
			Oid			tt[1] = {TEXTOID};
			Datum		d[1];

			initStringInfo(&p);
			/* anyone may LISTEN: no tenant in the payload, the id leads an operator to the record */
			appendStringInfo(&p, "{\"id\":" INT64_FORMAT ",\"kind\":\"%s\",\"outcome\":\"%s\"",
							 next_id, f[10], f[12]);
			if (f[13])
				appendStringInfo(&p, ",\"sqlstate\":\"%s\"", f[13]);
			appendStringInfoChar(&p, '}');
			d[0] = CStringGetTextDatum(p.data);
			(void) SPI_execute_plan(writer_plan(&notify_plan, "SELECT pg_catalog.pg_notify('utilix_security', $1)", 1, tt),
									d, NULL, false, 0);
		}
		next_id++;
		m++;
	}
	if (m == 0)
		return;

	for (int c = 0; c < NCOLS; c++)
		args[c] = array_of(cols[c], colnulls[c], m, col_types[c]);
	args[NCOLS] = TimestampTzGetDatum(written_at);
	argtypes[NCOLS] = written_at_type[0];
	/*
	 * unqualified unnest: only that spelling takes several arrays (the
	 * writer's search_path is pg_catalog, pg_temp)
	 */
	if (SPI_execute_plan(writer_plan(&insert_plan,
									 "INSERT INTO utilix.access_log (id, at, tenant_id, app_user, session_role, db_role, "
									 "client_addr, client_port, application_name, backend_pid, kind, tables, outcome, sqlstate, "
									 "query_id, query, detail, record_id, prev_hash, hash, written_at) "
									 "SELECT u.id, u.at, u.tenant_id, u.app_user, u.session_role, u.cur, u.addr::pg_catalog.inet, "
									 "u.port, u.app, u.pid, u.kind, u.tables::pg_catalog.jsonb, u.outcome, u.sqlstate, u.qid, "
									 "u.query, u.detail, u.rid::pg_catalog.uuid, u.prev, u.hash, $21 "
									 "FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
									 "$16, $17, $18, $19, $20) AS u(id, at, tenant_id, app_user, session_role, cur, addr, port, "
									 "app, pid, kind, tables, outcome, sqlstate, qid, query, detail, rid, prev, hash)",
									 NCOLS + 1, argtypes),
						 args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into utilix.access_log");

	/* the new heads, in one statement */
	{
		Datum	   *tk = palloc(sizeof(Datum) * nheads);
		Datum	   *li = palloc(sizeof(Datum) * nheads);
		Datum	   *hh = palloc(sizeof(Datum) * nheads);
		Datum	   *nn = palloc(sizeof(Datum) * nheads);
		int			k = 0;
		Datum		a[4];
		Oid			t[4] = {INT8ARRAYOID, INT8ARRAYOID, BYTEAARRAYOID, INT8ARRAYOID};

		for (int i = 0; i < nheads; i++)
		{
			if (heads[i].added == 0)
				continue;
			tk[k] = Int64GetDatum(heads[i].tenant);
			li[k] = Int64GetDatum(heads[i].last_id);
			hh[k] = bytea_datum(heads[i].hash, 32);
			nn[k] = Int64GetDatum(heads[i].added);
			k++;
		}
		a[0] = array_of(tk, NULL, k, INT8OID);
		a[1] = array_of(li, NULL, k, INT8OID);
		a[2] = array_of(hh, NULL, k, BYTEAOID);
		a[3] = array_of(nn, NULL, k, INT8OID);
		if (SPI_execute_plan(writer_plan(&advance_plan,
										 "INSERT INTO utilix.access_log_chain AS c (tenant_id, last_id, last_hash, records) "
										 "SELECT * FROM unnest($1, $2, $3, $4) "
										 "ON CONFLICT (tenant_id) DO UPDATE SET last_id = EXCLUDED.last_id, "
										 "last_hash = EXCLUDED.last_hash, records = c.records + EXCLUDED.records",
										 4, t),
							 a, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not advance the access log chain");
	}
}

/* set when the database no longer has the extension: its records have nowhere to go */
static bool extension_missing = false;
static TimestampTz missing_since = 0;

typedef struct WriteArgs
{
	AlogRecord *recs;
	int			n;
	bool		dedupe;
} WriteArgs;

static void
write_work(void *arg)
{
	WriteArgs  *w = (WriteArgs *) arg;

	write_records(w->recs, w->n, w->dedupe);
}

/* One transaction: write these records; false (and logged) on failure. */
static bool
write_in_transaction(AlogRecord *recs, int n, bool dedupe)
{
	WriteArgs	w = {recs, n, dedupe};
	bool		installed;
	bool		ok;

	ok = utilix_worker_transaction("utilix: writing the access log", write_work, &w, &installed);
	/*
	 * No extension: perhaps not yet committed (records of the transaction
	 * that creates it), perhaps dropped.  Only after half a minute without
	 * it are the records given up (and counted).
	 */
	if (installed)
		missing_since = 0;
	else if (missing_since == 0)
		missing_since = GetCurrentTimestamp();
	extension_missing = !installed && TimestampDifferenceExceeds(missing_since, GetCurrentTimestamp(), 30000);
	if (ok && installed)
	{
		days_known_lo = days_pending_lo;
		days_known_hi = days_pending_hi;
	}
	if (!installed)
	{
		ereport(LOG,
				(errmsg("utilix: extension utilix is not installed in this database: %d access log records cannot be kept", n)));
		ok = false;
	}
	return ok;
}

static bool
has_suffix(const char *name, const char *suffix)
{
	size_t		n = strlen(name);
	size_t		k = strlen(suffix);

	return n > k && strcmp(name + n - k, suffix) == 0;
}

/* A spill file of this database waiting to be loaded (name into buf), or false. */
static bool
next_spill_file(Oid dboid, char *buf, size_t len)
{
	char		dir[MAXPGPATH];
	DIR		   *d;
	struct dirent *de;
	bool		found = false;

	spill_dir(dboid, dir, sizeof(dir));
	d = opendir(dir);
	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL)
	{
		/* a file being loaded first, so that a restarted writer finishes it */
		if (has_suffix(de->d_name, ".loading") || has_suffix(de->d_name, ".spill"))
		{
			snprintf(buf, len, "%s/%s", dir, de->d_name);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* the spill file being loaded, and how far */
static char loading_path[MAXPGPATH] = "";
static off_t loading_offset = 0;
static int64 loading_total = 0;
static int64 loading_bad = 0;

/*
 * Load one chunk (utilix.access_log_batch records) of this database's spill
 * files, so that the queue, and statements waiting in sync mode, never wait
 * for a whole file.  A file is renamed first (appenders then start a new
 * one) and locked (an append in flight finishes first); it is deleted once
 * every chunk is in.  Loads are idempotent, so a crash in the middle only
 * repeats work.  Returns true when more is waiting.
 */
static bool
load_spill_chunk(void)
{
	int			fd;
	AlogRecord *recs;
	int			cap = Max(alog_batch, 1);
	int			n = 0;
	bool		eof = false;
	bool		ok = true;
	off_t		chunk_start;
	int64		bad_start;

	if (loading_path[0] == '\0')
	{
		char		path[MAXPGPATH];
		SpillHeader h;

		if (!next_spill_file(my_writer_db, path, sizeof(path)))
			return false;
		if (has_suffix(path, ".spill"))
		{
			char		renamed[MAXPGPATH];

			snprintf(renamed, sizeof(renamed), "%s.loading", path);
			if (rename(path, renamed) != 0)
				return false;
			strlcpy(path, renamed, sizeof(path));
		}
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return false;
		(void) flock(fd, LOCK_EX);
		if (read(fd, &h, sizeof(h)) != sizeof(h) || memcmp(h.magic, ALOG_SPILL_MAGIC, 8) != 0 ||
			h.record_size != sizeof(AlogRecord))
		{
			char		rejected[MAXPGPATH];

			snprintf(rejected, sizeof(rejected), "%s.rejected", path);
			ereport(LOG,
					(errmsg("utilix: spill file \"%s\" is not an access log spill of this build; kept as \"%s\"",
							path, rejected)));
			close(fd);
			(void) rename(path, rejected);
			return true;
		}
		close(fd);
		strlcpy(loading_path, path, sizeof(loading_path));
		loading_offset = sizeof(SpillHeader);
		loading_total = 0;
		loading_bad = 0;
	}

	fd = open(loading_path, O_RDONLY);
	if (fd < 0)
	{
		loading_path[0] = '\0';
		return true;
	}
	(void) flock(fd, LOCK_EX);
	chunk_start = loading_offset;
	bad_start = loading_bad;
	if (lseek(fd, loading_offset, SEEK_SET) != loading_offset)
	{
		close(fd);
		loading_path[0] = '\0';
		return true;
	}
	recs = palloc(sizeof(AlogRecord) * cap);
	while (n < cap)
	{
		ssize_t		got = read(fd, &recs[n], sizeof(AlogRecord));

		if (got == 0)
		{
			eof = true;
			break;
		}
		if (got != sizeof(AlogRecord))
		{
			loading_bad++;
			eof = true;
			break;
		}
		loading_offset += sizeof(AlogRecord);
		if (!record_crc_ok(&recs[n]) || recs[n].dboid != my_writer_db)
		{
			loading_bad++;
			continue;
		}
		n++;
	}
	/* the lock is held until the chunk is in (and, at the end, the file gone) */
	if (n > 0)
	{
		ok = write_in_transaction(recs, n, true);
		if (!ok && extension_missing)
		{
			loading_bad += n;
			ok = true;
		}
		else if (ok)
			loading_total += n;
	}
	pfree(recs);
	if (!ok)
	{
		/* read this chunk again, in a second (not at once: no spinning on a failure) */
		close(fd);
		loading_offset = chunk_start;
		loading_bad = bad_start;
		return false;
	}
	if (!eof)
		close(fd);
	else
	{
		/*
		 * Unlinked while still locked: an appender that opened the file before
		 * it was renamed, and waits for the lock, then finds it unlinked and
		 * starts a new file.
		 */
		(void) unlink(loading_path);
		close(fd);
		pg_atomic_fetch_add_u64(&alog->loaded, loading_total);
		if (loading_bad > 0)
			pg_atomic_fetch_add_u64(&alog->lost, loading_bad);
		ereport(LOG,
				(errmsg("utilix: loaded %ld access log records from a spill file%s", (long) loading_total,
						loading_bad > 0 ? "; some were damaged or had nowhere to go and are counted as lost" : "")));
		loading_path[0] = '\0';
	}
	return true;
}

/*
 * A batch failed.  If some of its records can be written one by one, the
 * others are what failed: they are given up (counted, and logged without
 * their content) so that they cannot hold up every later record of the
 * database.  If none can, the failure is not theirs (a full disk, a lock):
 * the batch is kept and retried.
 */
static bool
write_one_by_one(TakenBatch *b, int *given_up)
{
	int			good = 0;
	int			bad = 0;

	*given_up = 0;
	for (int i = 0; i < b->n; i++)
	{
		if (write_in_transaction(&b->recs[i], 1, false))
			good++;
		else
			bad++;
	}
	if (good == 0)
		return false;
	if (bad > 0)
	{
		pg_atomic_fetch_add_u64(&alog->lost, bad);
		*given_up = bad;
		ereport(LOG,
				(errmsg("utilix: %d access log records could not be written and were given up; %d of their batch were written",
						bad, good)));
	}
	return true;
}

/* On a hot standby: the batch goes to a spill file for the primary. */
static bool
spill_batch_on_standby(TakenBatch *b)
{
	return spill_records(my_writer_db, b->recs, b->n, true);
}

static void
maintain_work(void *arg)
{
	(void) SPI_execute("SELECT utilix._access_log_maintain()", false, 0);
}

static void
maintain_log(void)
{
	(void) utilix_worker_transaction("utilix: access log maintenance", maintain_work, NULL, NULL);
	/* days may have gone */
	days_known_lo = 0;
	days_known_hi = -1;
}

void
utilix_alog_writer_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TakenBatch	b;
	TimestampTz last_busy;
	TimestampTz last_maint = 0;
	TimestampTz last_spill_check = 0;
	bool		spill_hint = true;	/* look at once: a restart may have left files */

	in_alog_worker = true;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* one writer per database */
	LWLockAcquire(alog->lock, LW_EXCLUSIVE);
	my_writer = writer_for(dboid, true);
	if (my_writer == NULL || (my_writer->state == WRITER_RUNNING && my_writer->pid != MyProcPid))
	{
		LWLockRelease(alog->lock);
		proc_exit(0);
	}
	my_writer->state = WRITER_RUNNING;
	my_writer->pid = MyProcPid;
	my_writer->latch = MyLatch;
	my_writer_db = dboid;
	LWLockRelease(alog->lock);
	on_shmem_exit(writer_detach, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("utilix access log writer");
	/* records are evidence, and access_log_sync promises durability: always flush the commit */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	/* it runs as a superuser: no one's objects on a search_path may stand in for the catalog's */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	/* nor may a database's settings (its owner's to make) stop it */
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "10s", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_tablespace", "", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_table_access_method", "heap", PGC_SUSET, PGC_S_OVERRIDE);

	b.cap = Max(alog_batch, 1);
	b.slot = palloc(sizeof(int) * b.cap);
	b.recs = palloc(sizeof(AlogRecord) * b.cap);
	last_busy = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now;
		bool		spill_more = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		now = GetCurrentTimestamp();
		if (!RecoveryInProgress() && TimestampDifferenceExceeds(last_maint, now, 3600 * 1000))
		{
			last_maint = now;
			maintain_log();
		}

		/* a reload (here or while a batch gathered) may have raised the batch size */
		if (alog_batch > b.cap)
		{
			b.cap = alog_batch;
			b.slot = repalloc(b.slot, sizeof(int) * b.cap);
			b.recs = repalloc(b.recs, sizeof(AlogRecord) * b.cap);
		}
		/* the queue first: statements may be waiting for it */
		take_batch(&b);
		if (b.n > 0)
		{
			bool		ok;
			bool		lost = false;
			int			given_up = 0;

			if (RecoveryInProgress())
				ok = spill_batch_on_standby(&b);
			else
				ok = write_in_transaction(b.recs, b.n, false);
			if (!ok && extension_missing)
			{
				/* DROP EXTENSION took the log: these are lost, and counted */
				ok = lost = true;
			}
			else if (!ok && !RecoveryInProgress() && b.n > 1)
				ok = write_one_by_one(&b, &given_up);
			else if (!ok && !RecoveryInProgress())
			{
				/* one record failing alone, again and again: given up after five tries */
				static uint64 failing_seq = 0;
				static int	failures = 0;

				failures = (failing_seq == b.recs[0].seq) ? failures + 1 : 1;
				failing_seq = b.recs[0].seq;
				if (failures >= 5)
				{
					ereport(LOG,
							(errmsg("utilix: an access log record could not be written five times and was given up")));
					ok = lost = true;
					failures = 0;
				}
			}
			release_batch(&b, ok, lost);
			if (given_up > 0)
				pg_atomic_fetch_sub_u64(&alog->written, given_up);
			last_busy = GetCurrentTimestamp();
			if (!ok)
			{
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 1000L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				continue;
			}
		}

		/* then a chunk of spill files, if there are any (looked for every second) */
		if (!RecoveryInProgress() &&
			(spill_hint || TimestampDifferenceExceeds(last_spill_check, GetCurrentTimestamp(), 1000)))
		{
			last_spill_check = GetCurrentTimestamp();
			spill_more = spill_hint = load_spill_chunk();
			if (spill_more)
				last_busy = GetCurrentTimestamp();
		}

		if (b.n == alog_batch || spill_more)
			continue;			/* more waiting */
		if (b.n > 0)
		{
			/* a part batch: let the next one gather */
			if (alog_writer_delay > 0)
				gather_delay();
			continue;
		}
		if (TimestampDifferenceExceeds(last_busy, GetCurrentTimestamp(), alog_writer_idle))
		{
			/*
			 * Idle: leave, so that DROP DATABASE is not held up; started again on
			 * demand.  Checked and given up under the lock, so that a record
			 * queued meanwhile starts a new writer instead of waking this one.
			 */
			bool		ready = false;

			LWLockAcquire(alog->lock, LW_EXCLUSIVE);
			for (int i = 0; i < alog->nslots && !ready; i++)
				ready = (alog_slots[i].state == SLOT_READY && alog_slots[i].rec.dboid == my_writer_db);
			if (!ready)
			{
				my_writer->state = WRITER_NONE;
				my_writer->pid = 0;
				my_writer->latch = NULL;
				my_writer->dboid = InvalidOid;
				my_writer = NULL;
			}
			LWLockRelease(alog->lock);
			if (!ready)
				proc_exit(0);
			last_busy = GetCurrentTimestamp();
			continue;
		}
		{
			int			rc;

			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   200L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if ((rc & WL_LATCH_SET) && alog_writer_delay > 0)
				gather_delay();
		}
	}
}

/*
 * Woken by a new record: let the batch gather for utilix.access_log_writer_delay.
 * New records do not wake the writer meanwhile (it is not idle), signals
 * do: termination and reloads are handled at once.
 */
static void
gather_delay(void)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), alog_writer_delay);

	for (;;)
	{
		long		left = 0;
		TimestampTz now = GetCurrentTimestamp();

		if (now >= until)
			return;
		left = (long) ((until - now) / 1000) + 1;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (my_writer->urgent)
		{
			/* a statement waits in sync mode: write now */
			LWLockAcquire(alog->lock, LW_EXCLUSIVE);
			my_writer->urgent = false;
			LWLockRelease(alog->lock);
			return;
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			until = Min(until, TimestampTzPlusMilliseconds(GetCurrentTimestamp(), alog_writer_delay));
		}
	}
}

/* =====================================================================
 * Spill transfer between a standby and its primary
 * ===================================================================== */

/*
 * utilix.access_log_spill() returns bytea: on a standby, the records spilled
 * for this database, as one spill file; the files move to exported/ so that
 * each record is handed out once.
 */
PG_FUNCTION_INFO_V1(utilix_access_log_spill);
Datum
utilix_access_log_spill(PG_FUNCTION_ARGS)
{
	char		dir[MAXPGPATH];
	char		exported[MAXPGPATH];
	DIR		   *d;
	struct dirent *de;
	StringInfoData out;
	SpillHeader h;
	bytea	   *res;
	List	   *names = NIL;
	ListCell   *lc;

	/* on a primary the spill directory is the writer's own to-do list */
	if (!RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("utilix.access_log_spill() hands over a hot standby's records; this server is a primary"),
				 errhint("The primary's own spill files are loaded by its access log writer.")));
	utilix_require_master_key();
	spill_dir(MyDatabaseId, dir, sizeof(dir));
	snprintf(exported, sizeof(exported), "%s/exported", dir);
	initStringInfo(&out);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, ALOG_SPILL_MAGIC, 8);
	h.record_size = sizeof(AlogRecord);
	h.version = 1;
	appendBinaryStringInfo(&out, (char *) &h, sizeof(h));

	d = opendir(dir);
	if (d != NULL)
	{
		while ((de = readdir(d)) != NULL)
			if (strstr(de->d_name, ".spill") != NULL && strstr(de->d_name, ".loading") == NULL)
				names = lappend(names, pstrdup(de->d_name));
		closedir(d);
	}
	(void) mkdir(exported, S_IRWXU);
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		char		from[MAXPGPATH];
		char		to[MAXPGPATH];
		int			fd;
		AlogRecord	rec;
		SpillHeader fh;

		snprintf(from, sizeof(from), "%s/%s", dir, name);
		snprintf(to, sizeof(to), "%s/%s.%ld", exported, name, (long) GetCurrentTimestamp());
		if (rename(from, to) != 0)
			continue;
		fd = open(to, O_RDONLY);
		if (fd < 0)
			continue;
		(void) flock(fd, LOCK_EX);
		if (read(fd, &fh, sizeof(fh)) == sizeof(fh) && memcmp(fh.magic, ALOG_SPILL_MAGIC, 8) == 0 &&
			fh.record_size == sizeof(AlogRecord))
		{
			while (read(fd, &rec, sizeof(rec)) == sizeof(rec))
				if (record_crc_ok(&rec))
					appendBinaryStringInfo(&out, (char *) &rec, sizeof(rec));
		}
		close(fd);
	}
	/* sealed with a key only servers holding the master key have: no one forges records in transit */
	{
		uint8		mac[UTILIX_MAC_LEN];

		utilix_hmac_sha256(utilix_subkey(UTILIX_SUBKEY_CHAIN), UTILIX_KEY_LEN,
						   (const uint8 *) out.data, out.len, mac);
		appendBinaryStringInfo(&out, (char *) mac, sizeof(mac));
	}
	res = (bytea *) palloc(VARHDRSZ + out.len);
	SET_VARSIZE(res, VARHDRSZ + out.len);
	memcpy(VARDATA(res), out.data, out.len);
	PG_RETURN_BYTEA_P(res);
}

/*
 * utilix.load_access_log_spill(data bytea) returns bigint: on the primary,
 * queue the records of a standby's spill for this database's writer, by
 * writing them into its spill directory.  Damaged records are refused (the
 * whole call fails, nothing is loaded); loading the same data twice adds
 * nothing, because the writer skips records it already has.
 */
PG_FUNCTION_INFO_V1(utilix_load_access_log_spill);
Datum
utilix_load_access_log_spill(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(data);
	size_t		len = VARSIZE_ANY_EXHDR(data);
	size_t		nrec;
	AlogRecord *recs;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("spilled access log records are loaded on the primary")));
	utilix_require_master_key();
	recs = utilix_access_log_spill_parse(p, len, MyDatabaseId, &nrec);
	if (nrec > 0)
	{
		if (!spill_records(MyDatabaseId, recs, (int) nrec, true))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write the spill directory of this database: %m")));
		LWLockAcquire(alog->lock, LW_EXCLUSIVE);
		ensure_writer_locked(MyDatabaseId);
		LWLockRelease(alog->lock);
	}
	PG_RETURN_INT64((int64) nrec);
}

PG_FUNCTION_INFO_V1(utilix_access_log_kinds);
Datum
utilix_access_log_kinds(PG_FUNCTION_ARGS)
{
	Datum		d[ALOG_NKINDS];

	for (int i = 0; i < ALOG_NKINDS; i++)
		d[i] = CStringGetTextDatum(kind_names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, ALOG_NKINDS, TEXTOID, -1, false, TYPALIGN_INT));
}

/* =====================================================================
 * Settings and hooks
 * ===================================================================== */

void
AccessLogInit(void)
{
	DefineCustomEnumVariable("utilix.access_log",
							 "Which accesses to protected tables are recorded: off, writes, or all.",
							 "A table's own setting (utilix.set_access_log) overrides this one.",
							 &alog_mode, ALOG_MODE_ALL, mode_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.access_log_queue_size",
							"Records the shared-memory queue of the access log holds.",
							NULL, &alog_queue_size, 4096, 64, 1048576,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("utilix.access_log_overflow",
							 "What a statement does when the access log queue is full: spill to a file, or wait.",
							 "wait gives up after utilix.access_log_wait_timeout and spills.",
							 &alog_overflow, OVERFLOW_SPILL, overflow_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.access_log_wait_timeout",
							"How long a statement waits for room in the access log queue before it spills.",
							NULL, &alog_wait_timeout, 5000, 0, 3600000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("utilix.access_log_sync",
							 "A statement waits until its access log records are committed.",
							 NULL, &alog_sync, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("utilix.access_log_query_text",
							 "Records carry the statement's text, with every literal masked.",
							 NULL, &alog_query_text, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.access_log_retention",
							"Days the access log is kept; older days are dropped by the writer.",
							NULL, &alog_retention, 400, 1, 36500,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.access_log_batch",
							"Records the access log writer inserts per transaction at most.",
							NULL, &alog_batch, 1000, 1, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.access_log_writer_delay",
							"How long the access log writer lets a batch gather after it was woken.",
							NULL, &alog_writer_delay, 10, 0, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.access_log_writer_idle",
							"An access log writer with nothing to do for this long exits (and is started again on demand).",
							NULL, &alog_writer_idle, 2000, 100, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;

	EnableQueryId();
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = alog_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = alog_shmem_startup;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = alog_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = alog_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = alog_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = alog_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = alog_ProcessUtility;
	prev_planner = planner_hook;
	planner_hook = alog_planner;
	RegisterXactCallback(alog_xact_callback, NULL);
	RegisterSubXactCallback(alog_subxact_callback, NULL);
}
