/*
 * worker.c
 *		The utilix background worker: applies retention policies and purges
 *		terminated tenants whose grace period has ended.
 *
 * It connects to the database named by utilix.database and, every
 * utilix.purge_naptime seconds, calls utilix._worker_tick() in a
 * transaction of its own.  The tick does a bounded amount of work (a few
 * short batches per policy), so every transaction, and every lock, is short;
 * an interrupted tick loses nothing, because each batch's result is
 * recorded in the transaction that did it.  SIGHUP reloads the settings,
 * SIGTERM ends the worker; it never errors out of the loop for bookkeeping:
 * a failed tick is logged and retried at the next one.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "utilix.h"

static char *worker_database = NULL;
static int	purge_naptime = 60;
static int	purge_batch_rows = 5000;
static int	purge_batches_per_run = 50;
static int	purge_lock_timeout = 100;
static int	purge_run_retention = 400;
static int	purge_time_budget = 100;

PGDLLEXPORT void utilix_worker_main(Datum arg);

/*
 * Run work() in a transaction of its own, with a snapshot and SPI connected,
 * in a memory context that is dropped afterwards.  An error is logged and
 * the transaction aborted: a background worker never leaves its loop for
 * one failed piece of bookkeeping.  work() is not called where the
 * extension is not installed; *installed says which (if not NULL).
 */
bool
utilix_worker_transaction(const char *activity, void (*work) (void *arg), void *arg,
						  bool *installed)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "utilix worker transaction",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	volatile bool ok = true;

	if (installed)
		*installed = true;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'utilix'", true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
			work(arg);
		else if (installed)
			*installed = false;
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return ok;
}

static void
tick_work(void *arg)
{
	(void) SPI_execute("SELECT utilix._worker_tick()", false, 0);
}

static void
run_tick(void)
{
	(void) utilix_worker_transaction("utilix: retention and offboarding", tick_work, NULL, NULL);
}

void
utilix_worker_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(worker_database, NULL, 0);
	ereport(LOG, (errmsg("utilix worker started in database \"%s\"", worker_database)));

	/*
	 * Wake every second: start access log writers that nobody else would
	 * (records left from before a restart); run the retention tick every
	 * utilix.purge_naptime.
	 */
	{
		TimestampTz last_tick = GetCurrentTimestamp();

		for (;;)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
			utilix_access_log_launch_writers();
			if (TimestampDifferenceExceeds(last_tick, GetCurrentTimestamp(), purge_naptime * 1000))
			{
				run_tick();
				last_tick = GetCurrentTimestamp();
			}
		}
	}
}

void
WorkerInit(void)
{
	BackgroundWorker worker;

	DefineCustomStringVariable("utilix.database",
							   "Database in which the utilix worker applies retention and offboarding.",
							   "Empty disables the worker.",
							   &worker_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.purge_naptime",
							"Seconds between two runs of the utilix worker.",
							NULL, &purge_naptime, 60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.purge_batch_rows",
							"Rows deleted per retention batch.",
							NULL, &purge_batch_rows, 5000, 1, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.purge_batches_per_run",
							"Batches per policy in one run of the worker (one transaction).",
							NULL, &purge_batches_per_run, 50, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.purge_time_budget",
							"Time the worker spends on one policy in one transaction; locks are held no longer.",
							NULL, &purge_time_budget, 100, 1, 600000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.purge_lock_timeout",
							"How long retention and offboarding wait for a lock; what would wait longer is left for the next run.",
							NULL, &purge_lock_timeout, 100, 1, 60000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.purge_run_retention",
							"Days the history in utilix.purge_run is kept.",
							NULL, &purge_run_retention, 400, 1, 36500,
							PGC_SUSET, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress ||
		worker_database == NULL || worker_database[0] == '\0')
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "utilix");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "utilix_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "utilix worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "utilix worker");
	RegisterBackgroundWorker(&worker);
}
