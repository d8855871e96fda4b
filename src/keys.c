/*
 * keys.c
 *		The cluster's master key and the subkeys derived from it.
 *
 * The key is read once, in the postmaster, from utilix.master_key_file or
 * from the standard output of utilix.master_key_command.  It is kept in one
 * page of anonymous memory that is locked (where the memory limit allows)
 * and excluded from core dumps; backends inherit it through fork.  It never
 * enters a table, a setting's shown value, a log line or an error.
 *
 * Purpose-bound subkeys are derived with HKDF-SHA-256 at load time.  Each
 * database stores a key-check value (an HMAC under the check subkey) when
 * the extension is created; every key-dependent call compares it first, so
 * a server started with another key fails with a clear error instead of
 * producing garbage.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "utilix.h"

#define KEY_HEX_LEN		(UTILIX_KEY_LEN * 2)
#define KEY_TEXT_MAX	256

static const char *const subkey_labels[UTILIX_NUM_SUBKEYS] = {
	"utilix context token signing v1",
	"utilix data key wrapping v1",
	"utilix blind index v1",
	"utilix access log chain v1",
	"utilix key check v1",
};

typedef struct KeyVault
{
	bool		loaded;
	bool		previous_loaded;	/* during a master-key rotation */
	uint8		master[UTILIX_KEY_LEN];
	uint8		subkeys[UTILIX_NUM_SUBKEYS][UTILIX_KEY_LEN];
	uint8		previous_subkeys[UTILIX_NUM_SUBKEYS][UTILIX_KEY_LEN];
} KeyVault;

static KeyVault *vault = NULL;
static char *master_key_file = NULL;
static char *master_key_command = NULL;
static char *previous_master_key_file = NULL;

/* per-backend: has this database's key-check value been compared? */
static uint64 kcv_verified_generation = 0;
static bool kcv_verified = false;

static void
vault_allocate(void)
{
	long		pagesize = sysconf(_SC_PAGESIZE);
	Size		size = TYPEALIGN(pagesize > 0 ? pagesize : 4096, sizeof(KeyVault));
	void	   *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("utilix could not allocate memory for the master key: %m")));
#ifdef MADV_DONTDUMP
	if (madvise(p, size, MADV_DONTDUMP) != 0)
		ereport(LOG,
				(errmsg("utilix could not exclude the master key from core dumps: %m")));
#endif
	if (mlock(p, size) != 0)
		ereport(LOG,
				(errmsg("utilix could not lock the master key in memory: %m"),
				 errhint("Raise the memory lock limit (ulimit -l) of the server's user to keep the key out of swap.")));
	memset(p, 0, size);
	vault = (KeyVault *) p;
}

/* Parse 64 hex characters, optionally followed by whitespace. */
static bool
parse_key_text(const char *text, size_t len, uint8 out[UTILIX_KEY_LEN])
{
	size_t		end = len;

	while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' ||
					   text[end - 1] == ' ' || text[end - 1] == '\t'))
		end--;
	if (end != KEY_HEX_LEN)
		return false;
	for (int i = 0; i < UTILIX_KEY_LEN; i++)
	{
		int			v = 0;

		for (int j = 0; j < 2; j++)
		{
			char		c = text[i * 2 + j];
			int			d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return false;
			v = v * 16 + d;
		}
		out[i] = (uint8) v;
	}
	return true;
}

static void
key_fatal(const char *setting, const char *value, const char *problem)
{
	ereport(FATAL,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("%s \"%s\" %s", setting, value, problem),
			 errhint("The master key must be 64 hexadecimal characters (32 random bytes), "
					 "in a file owned by the server's user and readable by it alone (mode 0600 or 0400).")));
}

static void
load_from_file(const char *path, const char *setting, char *buf, size_t *len)
{
	struct stat st;
	int			fd;
	ssize_t		n;

	if (!is_absolute_path(path))
		key_fatal(setting, path, "is not an absolute path");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("%s \"%s\" could not be opened: %m", setting, path)));
	if (fstat(fd, &st) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("%s \"%s\" could not be examined: %m", setting, path)));
	if (!S_ISREG(st.st_mode))
		key_fatal(setting, path, "is not a regular file");
	if (st.st_uid != geteuid())
		key_fatal(setting, path, "is not owned by the server's user");
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		key_fatal(setting, path, "is accessible by group or others");
	n = read(fd, buf, KEY_TEXT_MAX);
	close(fd);
	if (n < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("%s \"%s\" could not be read: %m", setting, path)));
	*len = (size_t) n;
}

/* Run the command without a shell: split on blanks, execv the first word. */
static void
load_from_command(const char *command, char *buf, size_t *len)
{
	char	   *copy = pstrdup(command);
	char	   *argv[32];
	int			argc = 0;
	char	   *tok;
	char	   *save = NULL;
	int			pipefd[2];
	pid_t		pid;
	int			status;
	size_t		got = 0;

	for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save))
	{
		if (argc >= 31)
			key_fatal("utilix.master_key_command", "(command)", "has too many arguments");
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	if (argc == 0 || !is_absolute_path(argv[0]))
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("utilix.master_key_command \"%s\" must start with the absolute path of a program",
						argc ? argv[0] : ""),
				 errhint("The program is run without a shell; its standard output must be the key as 64 hexadecimal characters.")));
	if (pipe(pipefd) != 0)
		ereport(FATAL, (errmsg("utilix.master_key_command: could not create pipe: %m")));

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		ereport(FATAL, (errmsg("utilix.master_key_command: could not fork: %m")));
	if (pid == 0)
	{
		int			devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;)
	{
		ssize_t		n = read(pipefd[0], buf + got, KEY_TEXT_MAX - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t) n;
		if (got >= KEY_TEXT_MAX)
			break;
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
			ereport(FATAL, (errmsg("utilix.master_key_command: could not wait for the program: %m")));
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("utilix.master_key_command \"%s\" failed with status %d", argv[0],
						WIFEXITED(status) ? WEXITSTATUS(status) : -1)));
	*len = got;
	pfree(copy);
}

static void
derive_subkeys(const uint8 *master, uint8 out[UTILIX_NUM_SUBKEYS][UTILIX_KEY_LEN])
{
	for (int i = 0; i < UTILIX_NUM_SUBKEYS; i++)
		utilix_hkdf_sha256(master, UTILIX_KEY_LEN,
						   (const uint8 *) "utilix", 6,
						   (const uint8 *) subkey_labels[i], strlen(subkey_labels[i]),
						   out[i], UTILIX_KEY_LEN);
}

static void
load_master_key(void)
{
	char		text[KEY_TEXT_MAX + 1];
	size_t		len = 0;
	const char *setting;
	const char *value;
	bool		have_file = master_key_file && master_key_file[0];
	bool		have_cmd = master_key_command && master_key_command[0];

	if (!have_file && !have_cmd)
	{
		ereport(LOG,
				(errmsg("utilix: no master key is configured; key-dependent functions are disabled"),
				 errhint("Set utilix.master_key_file or utilix.master_key_command and restart the server.")));
		return;
	}
	if (have_file && have_cmd)
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("utilix.master_key_file and utilix.master_key_command are both set"),
				 errhint("Set only one of them.")));

	vault_allocate();
	if (have_file)
	{
		setting = "utilix.master_key_file";
		value = master_key_file;
		load_from_file(master_key_file, setting, text, &len);
	}
	else
	{
		setting = "utilix.master_key_command";
		value = master_key_command;
		load_from_command(master_key_command, text, &len);
	}
	if (!parse_key_text(text, len, vault->master))
	{
		utilix_wipe(text, sizeof(text));
		utilix_wipe(vault->master, UTILIX_KEY_LEN);
		key_fatal(setting, value, "does not hold exactly 64 hexadecimal characters");
	}
	utilix_wipe(text, sizeof(text));

	derive_subkeys(vault->master, vault->subkeys);
	vault->loaded = true;
	ereport(LOG, (errmsg("utilix: master key loaded from %s", setting)));

	/* the key being retired, while utilix.rewrap_keys() moves data keys off it */
	if (previous_master_key_file && previous_master_key_file[0])
	{
		uint8		prev[UTILIX_KEY_LEN];

		load_from_file(previous_master_key_file, "utilix.previous_master_key_file", text, &len);
		if (!parse_key_text(text, len, prev))
		{
			utilix_wipe(text, sizeof(text));
			key_fatal("utilix.previous_master_key_file", previous_master_key_file,
					  "does not hold exactly 64 hexadecimal characters");
		}
		utilix_wipe(text, sizeof(text));
		derive_subkeys(prev, vault->previous_subkeys);
		utilix_wipe(prev, sizeof(prev));
		vault->previous_loaded = true;
		ereport(LOG, (errmsg("utilix: previous master key loaded for rotation")));
	}
}

void
KeysInit(void)
{
	DefineCustomStringVariable("utilix.master_key_file",
							   "File holding the master key as 64 hexadecimal characters.",
							   "Read once at server start; must be owned by the server's user with mode 0600 or 0400.",
							   &master_key_file, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("utilix.master_key_command",
							   "Program whose standard output is the master key as 64 hexadecimal characters.",
							   "Run once at server start, without a shell; the first word is an absolute path.",
							   &master_key_command, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("utilix.previous_master_key_file",
							   "File holding the master key being retired, during a master-key rotation.",
							   "Data keys still wrapped under it can be read until utilix.rewrap_keys() has run.",
							   &previous_master_key_file, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		load_master_key();
}

bool
utilix_master_key_loaded(void)
{
	return vault != NULL && vault->loaded;
}

static void
no_key_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("utilix has no master key"),
			 errhint("Set utilix.master_key_file or utilix.master_key_command in postgresql.conf and restart the server.")));
}

/* For callers outside a transaction (the context check hook): no DB check. */
const uint8 *
utilix_subkey_unchecked(UtilixSubkey which)
{
	if (!utilix_master_key_loaded())
		return NULL;
	return vault->subkeys[which];
}

static void
compute_kcv_with(const uint8 *check_subkey, uint8 out[UTILIX_MAC_LEN])
{
	static const char msg[] = "utilix key check value";

	utilix_hmac_sha256(check_subkey, UTILIX_KEY_LEN,
					   (const uint8 *) msg, sizeof(msg) - 1, out);
}

static void
compute_kcv(uint8 out[UTILIX_MAC_LEN])
{
	compute_kcv_with(vault->subkeys[UTILIX_SUBKEY_CHECK], out);
}

/* The wrapping subkey of the previous master key, or NULL outside a rotation. */
const uint8 *
utilix_previous_wrap_subkey(void)
{
	if (!utilix_master_key_loaded() || !vault->previous_loaded)
		return NULL;
	return vault->previous_subkeys[UTILIX_SUBKEY_WRAP];
}

/*
 * 0: matches, 1: no value stored, 2: a stored value differs, 3: every
 * stored value matches the previous key (a rotation not yet finished).
 * Runs its query as the bootstrap superuser: the table is hidden from
 * everyone else.
 */
static int
compare_stored_kcv(void)
{
	uint8		mine[UTILIX_MAC_LEN];
	volatile int result = 1;
	Oid			save_userid;
	int			save_sec;
	uint8		prev[UTILIX_MAC_LEN];
	bool		have_prev = vault->previous_loaded;

	compute_kcv(mine);
	if (have_prev)
		compute_kcv_with(vault->previous_subkeys[UTILIX_SUBKEY_CHECK], prev);
	(void) utilix_catalog_relid("key_check");	/* watch it for changes */
	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT kcv FROM utilix.key_check", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read utilix.key_check");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			bytea	   *b;

			if (isnull)
				continue;
			b = DatumGetByteaPP(d);
			if (VARSIZE_ANY_EXHDR(b) == UTILIX_MAC_LEN &&
				utilix_ct_equal(VARDATA_ANY(b), mine, UTILIX_MAC_LEN) && result != 3)
				result = 0;
			else if (have_prev && VARSIZE_ANY_EXHDR(b) == UTILIX_MAC_LEN &&
					 utilix_ct_equal(VARDATA_ANY(b), prev, UTILIX_MAC_LEN) && result != 0)
				result = 3;
			else
			{
				result = 2;
				break;
			}
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();
	return result;
}

extern uint64 utilix_cache_generation;

void
utilix_require_master_key(void)
{
	int			state;

	utilix_require_preload();
	if (!utilix_master_key_loaded())
		no_key_error();
	if (kcv_verified && kcv_verified_generation == utilix_cache_generation)
		return;
	state = compare_stored_kcv();
	if (state == 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no master key check value is stored in this database"),
				 errhint("An operator can adopt the server's key with SELECT utilix.adopt_master_key().")));
	if (state == 2)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the master key does not match this database"),
				 errdetail("The key-check value stored in utilix.key_check was made with another master key."),
				 errhint("Start the server with the master key this database was created with.")));
	kcv_verified = true;
	kcv_verified_generation = utilix_cache_generation;
}

const uint8 *
utilix_subkey(UtilixSubkey which)
{
	utilix_require_master_key();
	return vault->subkeys[which];
}

PG_FUNCTION_INFO_V1(utilix_key_check_value);
Datum
utilix_key_check_value(PG_FUNCTION_ARGS)
{
	bytea	   *result;

	utilix_require_preload();
	if (!utilix_master_key_loaded())
		PG_RETURN_NULL();
	result = palloc(VARHDRSZ + UTILIX_MAC_LEN);
	SET_VARSIZE(result, VARHDRSZ + UTILIX_MAC_LEN);
	compute_kcv((uint8 *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(utilix_master_key_status);
Datum
utilix_master_key_status(PG_FUNCTION_ARGS)
{
	const char *s;

	utilix_require_preload();
	if (!utilix_master_key_loaded())
		s = "not configured";
	else
	{
		switch (compare_stored_kcv())
		{
			case 0:
				s = "ok";
				break;
			case 1:
				s = "no check value";
				break;
			case 3:
				s = "rotation pending";
				break;
			default:
				s = "mismatch";
				break;
		}
	}
	PG_RETURN_TEXT_P(cstring_to_text(s));
}
