/* convert.c: finding a converter by name and running a converter command
 * on a staged file, in its own process group, with a timeout, its output
 * to the log. Not for: choosing what to convert or installing the output
 * (download.c, cache.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "digest.h"
#include "log.h"

/* glibc 2.34 closes every other descriptor in the child itself: a thread
 * that opened one without O_CLOEXEC cannot leak it into the converter. */
#ifdef __GLIBC__
#if __GLIBC_PREREQ(2, 34)
#define CONVERT_HAVE_CLOSEFROM 1
#endif
#endif

enum {
	CONVERT_TAIL_BYTES = 4096, /* of its output, kept for the log */
	CONVERT_INFO_LINES = 20,   /* logged when it succeeds */
	CONVERT_GRACE_MS = 1000,   /* to drain the pipe once it has exited */
	CONVERT_SLICE_MS = 50,     /* polling for its exit without a pidfd */
};

/* The last CONVERT_TAIL_BYTES of the command's output. */
struct tail {
	char buf[CONVERT_TAIL_BYTES];
	size_t len;
	uint64_t dropped; /* bytes that came before buf */
};

static void tail_append(struct tail *t, const char *data, size_t n)
{
	if (n >= sizeof(t->buf)) {
		t->dropped += t->len + n - sizeof(t->buf);
		memcpy(t->buf, data + n - sizeof(t->buf), sizeof(t->buf));
		t->len = sizeof(t->buf);
		return;
	}
	if (t->len + n > sizeof(t->buf)) {
		size_t drop = t->len + n - sizeof(t->buf);

		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
		t->dropped += drop;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
}

/* Logs the kept output line by line: every line as a warning when the
 * command failed, the last CONVERT_INFO_LINES as info when it succeeded. */
static void tail_log(struct tail *t, const char *label, bool failed)
{
	char line[CONVERT_TAIL_BYTES + 1];
	const char *p = t->buf, *end = t->buf + t->len;
	size_t lines = 0, skip = 0;

	/* The first kept line is cut when bytes came before it. */
	if (t->dropped) {
		const char *nl = memchr(p, '\n', t->len);

		p = nl ? nl + 1 : end;
		if (failed)
			log_warn("%s: converter: (%llu earlier bytes not shown)", label,
				 (unsigned long long)(t->dropped + (uint64_t)(p - t->buf)));
	}
	for (const char *q = p; q < end; q++)
		if (*q == '\n' || q + 1 == end)
			lines++;
	if (!failed && lines > CONVERT_INFO_LINES)
		skip = lines - CONVERT_INFO_LINES;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (len && p[len - 1] == '\r')
			len--;
		/* Its bytes may go to syslog: no control characters. */
		for (size_t i = 0; i < len; i++)
			line[i] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
		line[len] = '\0';
		p = nl ? nl + 1 : end;
		if (skip) {
			skip--;
			continue;
		}
		if (failed)
			log_warn("%s: converter: %s", label, line);
		else
			log_info("%s: converter: %s", label, line);
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The daemon's environment with OMNIHUB_INPUT and OMNIHUB_OUTPUT set. The
 * array and its first two strings are owned (env_free); the rest are
 * environ's. */
static char **env_make(const char *input, const char *output)
{
	size_t n = 0, k = 2;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	if (asprintf(&env[0], "OMNIHUB_INPUT=%s", input) < 0) {
		env[0] = NULL;
		goto fail;
	}
	if (asprintf(&env[1], "OMNIHUB_OUTPUT=%s", output) < 0) {
		env[1] = NULL;
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "OMNIHUB_INPUT=", 14) != 0 &&
		    strncmp(environ[i], "OMNIHUB_OUTPUT=", 15) != 0)
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
fail:
	free(env[0]);
	free(env);
	return NULL;
}

static void env_free(char **env)
{
	if (!env)
		return;
	free(env[0]);
	free(env[1]);
	free(env);
}

/* Whether pid has exited, without reaping it: while it is a zombie its pid,
 * and so its process group's id, cannot be reused, so killing the group
 * stays safe. A child someone else reaped counts as exited. */
static bool has_exited(pid_t pid)
{
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno != EINTR;
	return info.si_pid == pid;
}

/* Starts the command; *pid and *read_fd (the read end of its output, with
 * O_CLOEXEC) are the caller's on success. */
static int spawn(const struct convert_job *job, pid_t *pid, int *read_fd, char *why,
		 size_t why_size)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t mask, defaults;
	char **env = env_make(job->input, job->output);
	/* O_CLOEXEC on both ends: another thread's child must not inherit the
	 * write end, or this pipe would not end when the command does. */
	int fds[2] = { -1, -1 }, rc;
	char *argv[] = { "sh", "-c", (char *)job->command, "sh", (char *)job->input,
			 (char *)job->output, NULL };

	if (!env)
		return -ENOMEM;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		rc = -errno;
		snprintf(why, why_size, "cannot make a pipe for the converter: %s", strerror(-rc));
		env_free(env);
		return rc;
	}
	posix_spawn_file_actions_init(&actions);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	/* dup2 drops O_CLOEXEC, also onto itself (a daemon that closed its
	 * stdout gets 1 back from pipe2). */
	posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
	posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
#ifdef CONVERT_HAVE_CLOSEFROM
	posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
	if (job->workdir)
		posix_spawn_file_actions_addchdir_np(&actions, job->workdir);
	/* Its own process group, to kill whatever it starts; no signal the
	 * daemon blocks or ignores (SIGPIPE) carries over. */
	sigemptyset(&mask);
	sigfillset(&defaults);
	sigdelset(&defaults, SIGKILL);
	sigdelset(&defaults, SIGSTOP);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					    POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &mask);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	rc = posix_spawn(pid, "/bin/sh", &actions, &attr, argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	env_free(env);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		snprintf(why, why_size, "cannot start the converter%s%s: %s",
			 job->workdir ? " in " : "", job->workdir ? job->workdir : "",
			 strerror(rc));
		return -rc;
	}
	*read_fd = fds[0];
	return 0;
}

/* Reads the command's output into tail until it has exited and the pipe is
 * drained, or until the deadline (0: none). Returns true on time. Once it
 * has exited, what it left running in its group is killed: nothing may
 * still write the output that is about to be installed, nor hold the pipe. */
static bool follow(pid_t pid, int read_fd, int64_t deadline, struct tail *tail)
{
	int pidfd = -1;
	bool exited = false, pipe_open = true;
	int64_t grace_end = 0;
	char chunk[4096];

#ifdef SYS_pidfd_open
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* O_CLOEXEC by itself */
#endif
	while (pipe_open || !exited) {
		struct pollfd pfd[2];
		nfds_t n = 0;
		int64_t now, wait_ms = -1;

		if (!exited && has_exited(pid)) {
			exited = true;
			kill(-pid, SIGKILL);
			grace_end = now_ms() + CONVERT_GRACE_MS;
		}
		now = now_ms();
		if (exited && (!pipe_open || now >= grace_end))
			break;
		if (!exited && deadline && now >= deadline)
			break;
		if (exited)
			wait_ms = grace_end - now;
		else if (deadline)
			wait_ms = deadline - now;
		if (!exited && pidfd < 0 && (wait_ms < 0 || wait_ms > CONVERT_SLICE_MS))
			wait_ms = CONVERT_SLICE_MS;
		if (pipe_open)
			pfd[n++] = (struct pollfd){ .fd = read_fd, .events = POLLIN };
		if (!exited && pidfd >= 0)
			pfd[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (poll(pfd, n, wait_ms > INT_MAX ? INT_MAX : (int)wait_ms) <= 0)
			continue;
		if (pipe_open && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			/* One read a wake, not full_io: the pipe does not block, and
			 * the deadline is checked between reads. */
			ssize_t got = read(read_fd, chunk, sizeof(chunk));

			if (got > 0)
				tail_append(tail, chunk, (size_t)got);
			else if (got == 0 || (errno != EINTR && errno != EAGAIN))
				pipe_open = false;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return exited;
}

/* Checks what the command left at output: a non-empty regular file. */
static int check_output(const struct convert_job *job, char *why, size_t why_size)
{
	char path[PATH_MAX];
	struct stat st;

	if (job->output[0] != '/' && job->workdir)
		snprintf(path, sizeof(path), "%s/%s", job->workdir, job->output);
	else
		snprintf(path, sizeof(path), "%s", job->output);
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			snprintf(why, why_size,
				 "the converter exited with status 0 but wrote no %s", path);
		else
			snprintf(why, why_size, "cannot check the converter's output %s: %s", path,
				 strerror(errno));
		return -EIO;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, why_size, "the converter's output %s is a symbolic link, not a file",
			 path);
		return -EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "the converter's output %s is not a regular file", path);
		return -EIO;
	}
	if (st.st_size == 0) {
		snprintf(why, why_size, "the converter's output %s is empty", path);
		return -EIO;
	}
	return 0;
}

int convert_run(const struct convert_job *job, char *why, size_t why_size)
{
	const char *label = job->label ? job->label : "convert";
	struct tail *tail = calloc(1, sizeof(*tail));
	int64_t deadline = 0;
	pid_t pid = -1;
	int read_fd = -1, status = 0, rc;
	bool on_time, reaped = true;

	why[0] = '\0';
	if (!tail) {
		rc = -ENOMEM;
		goto out;
	}
	rc = spawn(job, &pid, &read_fd, why, why_size);
	if (rc)
		goto out;
	if (job->timeout_seconds)
		deadline = now_ms() + (int64_t)job->timeout_seconds * 1000;
	on_time = follow(pid, read_fd, deadline, tail);
	if (!on_time)
		kill(-pid, SIGKILL); /* not reaped yet: the group id is still its */
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			reaped = false; /* SIGCHLD ignored, or reaped elsewhere */
			break;
		}
	}
	if (!on_time) {
		snprintf(why, why_size, "the converter did not finish in %u s",
			 job->timeout_seconds);
		rc = -ETIMEDOUT;
	} else if (!reaped) {
		snprintf(why, why_size, "cannot learn how the converter ended: %s",
			 strerror(ECHILD));
		rc = -EIO;
	} else if (WIFSIGNALED(status)) {
		const char *name = sigabbrev_np(WTERMSIG(status));

		snprintf(why, why_size, "the converter was killed by signal %d (SIG%s)",
			 WTERMSIG(status), name ? name : "?");
		rc = -EIO;
	} else if (WEXITSTATUS(status) != 0) {
		snprintf(why, why_size, "the converter exited with status %d", WEXITSTATUS(status));
		rc = -EIO;
	} else {
		rc = check_output(job, why, why_size);
	}
	tail_log(tail, label, rc != 0);
out:
	if (read_fd >= 0)
		close(read_fd);
	free(tail);
	return rc;
}

/* ---- converters found by name ---- */

enum {
	CONVERT_VERSION_SCAN = 4096, /* bytes of a converter read for its version line */
	CONVERT_VERSION_MAX = 64,
};

static const char convert_version_tag[] = "# omnihub-converter-version:";

bool convert_is_name(const char *command)
{
	const char *p = command;

	if (!*p || *p == '.' || *p == '-')
		return false; /* ".", "..", hidden files and options are not names */
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '+' ||
		      *p == '-'))
			return false;
	return p - command <= NAME_MAX;
}

size_t convert_dirs(const char *dir, const char *out[CONVERT_MAX_DIRS])
{
	size_t n = 0;

	if (dir && *dir)
		out[n++] = dir;
	out[n++] = CONVERTERDIR;
	return n;
}

/* Appends s to buf (at *len of cap, NUL-terminated). Returns false when it
 * does not fit. */
static bool append_raw(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= cap)
		return false;
	memcpy(buf + *len, s, n + 1);
	*len += n;
	return true;
}

/* Appends s single-quoted for /bin/sh: a ' inside becomes '\''. */
static bool append_quoted(char *buf, size_t cap, size_t *len, const char *s)
{
	bool ok = append_raw(buf, cap, len, "'");

	for (const char *p = s; ok && *p; p++) {
		char one[2] = { *p, '\0' };

		ok = append_raw(buf, cap, len, *p == '\'' ? "'\\''" : one);
	}
	return ok && append_raw(buf, cap, len, "'");
}

/* The converter's version (see convert_resolve) from its open file fd. */
static int read_version(int fd, char version[CONVERT_VERSION_MAX + 8])
{
	char head[CONVERT_VERSION_SCAN + 1], hex[DIGEST_HEX_MAX];
	ssize_t got = pread(fd, head, CONVERT_VERSION_SCAN, 0);
	struct stat st;
	int rc = 0;

	if (got < 0) {
		rc = -errno;
		goto out;
	}
	head[got] = '\0';
	for (char *line = head; line && *line;) {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (strncmp(line, convert_version_tag, sizeof(convert_version_tag) - 1) == 0) {
			const char *v = line + sizeof(convert_version_tag) - 1;
			size_t len;

			v += strspn(v, " \t");
			len = strcspn(v, " \t\r");
			if (len > 0 && len <= CONVERT_VERSION_MAX) {
				snprintf(version, CONVERT_VERSION_MAX + 8, "%.*s", (int)len, v);
				goto out;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	/* No version line: its bytes are its version. */
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	rc = digest_fd(fd, DIGEST_SHA256, (uint64_t)st.st_size, hex);
	if (rc == 0)
		snprintf(version, CONVERT_VERSION_MAX + 8, "sha256:%.*s", 64, hex);
out:
	return rc;
}

int convert_resolve(const char *name, const char *dir, char **command, char *why,
		    size_t why_size)
{
	const char *dirs[CONVERT_MAX_DIRS];
	size_t ndirs = convert_dirs(dir, dirs), len = 0;
	char path[PATH_MAX] = "", version[CONVERT_VERSION_MAX + 8], buf[4 * PATH_MAX + 256];
	int rc = -ENOENT, fd = -1;

	*command = NULL;
	why[0] = '\0';
	if (!convert_is_name(name)) {
		snprintf(why, why_size, "convert: \"%.40s\" is not a converter's name", name);
		rc = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < ndirs && rc == -ENOENT; i++) {
		struct stat st;

		/* A relative folder would change meaning with the converter's cwd. */
		if (dirs[i][0] != '/' ||
		    snprintf(path, sizeof(path), "%s/%s", dirs[i], name) >= (int)sizeof(path))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0) {
			rc = 0;
			break;
		}
		close(fd);
		fd = -1;
	}
	if (rc) {
		snprintf(why, why_size, "convert: no converter named \"%s\" in %s%s%s%s", name,
			 dirs[0], ndirs > 1 ? " nor in " : "", ndirs > 1 ? dirs[1] : "",
			 dir && dir[0] && dir[0] != '/' ? " (-o converters= must be absolute)"
							: "");
		goto out;
	}
	rc = read_version(fd, version);
	if (rc) {
		snprintf(why, why_size, "convert: cannot read the converter %s: %s", path,
			 strerror(-rc));
		goto out;
	}
	/* exec: its process is the one the sandbox waits for and kills. */
	if (!append_raw(buf, sizeof(buf), &len, "OMNIHUB_CONVERTER_VERSION=") ||
	    !append_quoted(buf, sizeof(buf), &len, version) ||
	    !append_raw(buf, sizeof(buf), &len, " exec ") ||
	    !append_quoted(buf, sizeof(buf), &len, path) ||
	    !append_raw(buf, sizeof(buf), &len, " \"$1\" \"$2\"")) {
		snprintf(why, why_size, "convert: the path of the converter %s is too long", path);
		rc = -ENAMETOOLONG;
		goto out;
	}
	*command = strdup(buf);
	if (!*command)
		rc = -ENOMEM;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int convert_with_meta(const char *command, const char *meta_json, char **out)
{
	const char *meta = meta_json ? meta_json : "{}";
	size_t cap = strlen(command) + 4 * strlen(meta) + 64, len = 0;
	char *buf = malloc(cap);
	int rc = 0;

	*out = NULL;
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	/* export: the command may be a pipeline or a list, not one program.
	 * Cannot fail: cap holds 4 bytes for each of meta's. */
	if (!append_raw(buf, cap, &len, "OMNIHUB_META=") || !append_quoted(buf, cap, &len, meta) ||
	    !append_raw(buf, cap, &len, "; export OMNIHUB_META; ") ||
	    !append_raw(buf, cap, &len, command)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	free(buf);
	return rc;
}
