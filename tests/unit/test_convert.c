/* test_convert.c: unit tests of running converter commands (arguments,
 * environment, working directory, failures and their log lines, the
 * timeout killing the whole process group, what is left behind) and of
 * finding a converter by name. Not for: when the daemon converts
 * (download.c). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "tap.h"

static char work[] = "/tmp/omnihub-test-convert-XXXXXX";
static char workdir[600], input[600], output[600], log_path[600];
static char log_text[65536]; /* what the last run logged */
static int subreaping;       /* orphans come back to us: run() leaves them */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	int ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* The file's content, NUL-terminated, in a static buffer ("" if none). */
static const char *read_text(const char *path)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	return buf;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Runs command on input -> output in workdir, with the log captured in
 * log_text; checks that no descriptor and no child is left behind. */
static int run(const char *command, unsigned timeout, char *why, size_t why_size, double *took)
{
	struct convert_job job = {
		.command = command,
		.input = input,
		.output = output,
		.workdir = workdir,
		.timeout_seconds = timeout,
		.label = "test/entry",
	};
	struct timespec start;
	int fds_before = count_fds(), saved = dup(2), log_fd, rc;
	pid_t left;

	unlink(output);
	fflush(stderr);
	log_fd = open(log_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	dup2(log_fd, 2);
	close(log_fd);
	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = convert_run(&job, why, why_size);
	if (took)
		*took = seconds_since(&start);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	snprintf(log_text, sizeof(log_text), "%s", read_text(log_path));
	tap_ok(count_fds() == fds_before, "no descriptor left open (%d before, %d after)",
	       fds_before, count_fds());
	if (!subreaping) {
		left = waitpid(-1, NULL, WNOHANG);
		tap_ok(left == -1 && errno == ECHILD, "no child left, not even a zombie (%d)",
		       (int)left);
	}
	return rc;
}

static int count_lines(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The test becomes a subreaper around such runs, so that what a command
 * leaves behind comes back to it when the shell ends and it can see how it
 * ended. */
static void subreaper(int on)
{
	prctl(PR_SET_CHILD_SUBREAPER, on);
	subreaping = on;
}

/* Reaps what comes back within 3 s; returns how many of them ended
 * otherwise than by SIGKILL, *reaped how many there were. (The shell may
 * reap its background job itself when it dies first.) */
static int reap_orphans(int *reaped)
{
	int not_killed = 0;

	*reaped = 0;
	for (int i = 0; i < 300; i++) {
		int status;
		pid_t got = waitpid(-1, &status, WNOHANG);

		if (got < 0)
			break;
		if (got == 0) {
			usleep(10000);
			continue;
		}
		(*reaped)++;
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			not_killed++;
	}
	return not_killed;
}

/* The timeout kills the whole group: the shell, its sleep and the sleep it
 * put in the background. */
static void test_timeout(void)
{
	char why[256] = "", pid_path[700], sh_path[700];
	double took;
	pid_t bg, sh;
	int rc, not_killed, reaped;

	snprintf(pid_path, sizeof(pid_path), "%s/bg.pid", workdir);
	snprintf(sh_path, sizeof(sh_path), "%s/sh.pid", workdir);
	subreaper(1);
	rc = run("echo $$ > sh.pid; sleep 100 & echo $! > bg.pid; echo started; sleep 30", 1, why,
		 sizeof(why), &took);
	bg = (pid_t)atoi(read_text(pid_path));
	sh = (pid_t)atoi(read_text(sh_path));
	not_killed = reap_orphans(&reaped);
	subreaper(0);
	tap_ok(rc == -ETIMEDOUT && strcmp(why, "the converter did not finish in 1 s") == 0,
	       "a 1 s timeout on sleep 30: -ETIMEDOUT (%d: %s)", rc, why);
	tap_ok(took < 5, "it returned after %.2f s", took);
	tap_ok(strstr(log_text, "warning: test/entry: converter: started") != NULL,
	       "its output is logged as warnings");
	tap_ok(bg > 0 && sh > 0, "the shell's pid %d and its background child's %d", (int)sh,
	       (int)bg);
	tap_ok(reaped >= 1 && not_killed == 0, "what it left was killed by SIGKILL (%d of %d)",
	       reaped - not_killed, reaped);
	tap_ok(kill(bg, 0) == -1 && errno == ESRCH, "kill(%d, 0): no such process", (int)bg);
	tap_ok(kill(-sh, 0) == -1 && errno == ESRCH, "kill(-%d, 0): no such process group",
	       (int)sh);
	tap_ok(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "nothing else is left");

	/* A success that leaves a job behind, holding the pipe and free to
	 * write the output: it is killed when the shell ends. */
	subreaper(1);
	rc = run("cp \"$1\" \"$2\"; sleep 30 & echo $! > bg.pid", 10, why, sizeof(why), &took);
	bg = (pid_t)atoi(read_text(pid_path));
	not_killed = reap_orphans(&reaped);
	subreaper(0);
	tap_ok(rc == 0 && took < 0.5, "a job left in the background: done in %.2f s (%d: %s)", took,
	       rc, why);
	tap_ok(reaped == 1 && not_killed == 0 && kill(bg, 0) == -1 && errno == ESRCH,
	       "the job left behind (%d) was killed by SIGKILL", (int)bg);
}

static int write_script(const char *path, const char *text, mode_t mode)
{
	return write_file(path, text) == 0 && chmod(path, mode) == 0 ? 0 : -1;
}

/* Converters found by name: the folders, in order, never $PATH; the
 * version line or the file's digest in the command; OMNIHUB_META. */
static void test_by_name(void)
{
	char dir[700], other[700], path[800], why[512], env_path[1600];
	char *command = NULL, *with_meta = NULL;
	int rc;

	tap_ok(convert_is_name("torchvision-onnx") && convert_is_name("a_b.c+1") &&
		       !convert_is_name("") && !convert_is_name("..") && !convert_is_name(".x") &&
		       !convert_is_name("-x") && !convert_is_name("bin/conv") &&
		       !convert_is_name("/usr/bin/conv") && !convert_is_name("conv \"$1\"") &&
		       !convert_is_name("cp \"$1\" \"$2\"") && !convert_is_name("a;b"),
	       "a name is one word without a slash; a command is anything else");

	/* "it's dir": the path is quoted in the command it gives. */
	snprintf(dir, sizeof(dir), "%s/it's dir", work);
	snprintf(other, sizeof(other), "%s/other", work);
	tap_ok(mkdir(dir, 0755) == 0 && mkdir(other, 0755) == 0, "two converter folders");
	snprintf(path, sizeof(path), "%s/upper", dir);
	tap_ok(write_script(path,
			    "#!/bin/sh\n# omnihub-converter-version: 7b\n"
			    "echo \"v=$OMNIHUB_CONVERTER_VERSION meta=$OMNIHUB_META\"\n"
			    "tr a-z A-Z < \"$1\" > \"$2\"\n",
			    0755) == 0,
	       "a converter with a version line");
	rc = convert_resolve("upper", dir, &command, why, sizeof(why));
	tap_ok(rc == 0 && command && strstr(command, "OMNIHUB_CONVERTER_VERSION='7b' exec ") &&
		       strstr(command, "it'\\''s dir/upper'"),
	       "found in -o converters=DIR, its version and quoted path in the command (%d: %s)",
	       rc, command ? command : why);
	rc = command ? convert_with_meta(command, "{\"builder\":\"it's\",\"n\":1}", &with_meta)
		     : -1;
	tap_ok(rc == 0 && with_meta, "the command with the entry's meta");
	rc = with_meta ? run(with_meta, 10, why, sizeof(why), NULL) : -1;
	tap_ok(rc == 0 && strcmp(read_text(output), "WEIGHTS\n") == 0 &&
		       strstr(log_text, "converter: v=7b meta={\"builder\":\"it's\",\"n\":1}\n"),
	       "it runs with $1 $2, its version and OMNIHUB_META (%d: %s):\n%s", rc, why, log_text);
	free(with_meta);
	with_meta = NULL;
	rc = convert_with_meta("echo \"$OMNIHUB_META\"; sh -c 'echo \"$OMNIHUB_META\"' > \"$2\"",
			       NULL, &with_meta);
	rc = rc == 0 ? run(with_meta, 10, why, sizeof(why), NULL) : rc;
	tap_ok(rc == 0 && strcmp(read_text(output), "{}\n") == 0,
	       "a shell command's children see OMNIHUB_META too; none is {} (%d: %s)", rc, why);
	free(with_meta);
	free(command);
	command = NULL;

	/* Without a version line: the file's digest; another content, another
	 * command (so the made file's stamp changes). */
	snprintf(path, sizeof(path), "%s/plain", other);
	tap_ok(write_script(path, "#!/bin/sh\ncp \"$1\" \"$2\"\n", 0755) == 0, "one without");
	rc = convert_resolve("plain", other, &command, why, sizeof(why));
	tap_ok(rc == 0 && command && strstr(command, "OMNIHUB_CONVERTER_VERSION='sha256:") &&
		       strspn(strstr(command, "sha256:") + 7, "0123456789abcdef") == 64,
	       "no version line: its sha256 is its version (%s)", command ? command : why);
	{
		char *again = NULL;

		tap_ok(write_script(path, "#!/bin/sh\ncp \"$1\" \"$2\" # changed\n", 0755) == 0,
		       "its content changed");
		rc = convert_resolve("plain", other, &again, why, sizeof(why));
		tap_ok(rc == 0 && again && command && strcmp(again, command) != 0,
		       "another content, another command");
		free(again);
	}
	free(command);
	command = NULL;

	/* -o converters= before the installed folder; a file that cannot run
	 * is passed over; $PATH is never searched. */
	snprintf(path, sizeof(path), "%s/upper", other);
	tap_ok(write_script(path, "#!/bin/sh\necho not me\n", 0644) == 0,
	       "a converter of that name that is not executable");
	rc = convert_resolve("upper", other, &command, why, sizeof(why));
	tap_ok(rc == -ENOENT && !command, "not executable: not found (%d)", rc);
	tap_ok(strstr(why, other) && strstr(why, CONVERTERDIR) && strstr(why, "\"upper\""),
	       "the message names the folders searched: %s", why);
	snprintf(env_path, sizeof(env_path), "%s:%s", dir, getenv("PATH") ? getenv("PATH") : "");
	setenv("PATH", env_path, 1);
	rc = convert_resolve("upper", NULL, &command, why, sizeof(why));
	tap_ok(rc == -ENOENT && !command && strstr(why, CONVERTERDIR) && !strstr(why, dir),
	       "a converter on $PATH is not found (%d: %s)", rc, why);
	rc = convert_resolve("upper", "relative/dir", &command, why, sizeof(why));
	tap_ok(rc == -ENOENT && strstr(why, "must be absolute"),
	       "a relative -o converters= is refused: %s", why);
	rc = convert_resolve("cp x y", dir, &command, why, sizeof(why));
	tap_ok(rc == -EINVAL && !command, "a shell command is not a name (%d)", rc);
}

int main(void)
{
	char why[512] = "", real_workdir[PATH_MAX], spaced[PATH_MAX + 2];
	int rc, fd;

	tap_ok(mkdtemp(work) != NULL, "work directory %s", work);
	snprintf(workdir, sizeof(workdir), "%s/work dir", work);
	snprintf(input, sizeof(input), "%s/in put's.pth", work);
	snprintf(output, sizeof(output), "%s/work dir/model.onnx", work);
	snprintf(log_path, sizeof(log_path), "%s/log", work);
	tap_ok(mkdir(workdir, 0755) == 0 && write_file(input, "weights\n") == 0,
	       "a working directory and an input, with spaces and a quote in their names");

	/* Success, the output written through $2 and through the environment. */
	rc =
	    run("echo converting \"$1\"; tr a-z A-Z < \"$1\" > \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == 0 && strcmp(read_text(output), "WEIGHTS\n") == 0, "output through $2 (%d: %s)",
	       rc, why);
	tap_ok(strstr(log_text, "info: test/entry: converter: converting ") != NULL,
	       "a success's output is logged as info");
	rc = run("cp \"$OMNIHUB_INPUT\" \"$OMNIHUB_OUTPUT\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == 0 && strcmp(read_text(output), "weights\n") == 0,
	       "output through OMNIHUB_INPUT and OMNIHUB_OUTPUT (%d: %s)", rc, why);

	/* Its working directory, stdin, and the descriptors it gets. */
	rc = run("pwd -P > \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(realpath(workdir, real_workdir) != NULL, "workdir resolved");
	snprintf(spaced, sizeof(spaced), "%s\n", real_workdir);
	tap_ok(rc == 0 && strcmp(read_text(output), spaced) == 0, "cwd is workdir: %s",
	       read_text(output));
	rc = run("if read line; then echo input > \"$2\"; else echo eof > \"$2\"; fi", 10, why,
		 sizeof(why), NULL);
	tap_ok(rc == 0 && strcmp(read_text(output), "eof\n") == 0, "stdin is /dev/null");
	/* What the shell holds: 0 /dev/null, 1 and 2 the pipe, and what dash
	 * opens itself (10, a copy of 0); not an fd the daemon left without
	 * O_CLOEXEC, nor the pipe's read end. */
	snprintf(spaced, sizeof(spaced), "%s/leak-me", work);
	tap_ok(write_file(spaced, "x") == 0, "a file to leak");
	fd = open(spaced, O_RDONLY);
	rc = run("ls -l /proc/$$/fd; cp \"$1\" \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(
	    rc == 0 && strstr(log_text, " 0 -> /dev/null\n") && !strstr(log_text, "leak-me") &&
		count_lines(log_text, "pipe:[") == 2 && strstr(log_text, " 1 -> pipe:[") &&
		strstr(log_text, " 2 -> pipe:["),
	    "it gets stdin /dev/null, stdout and stderr one pipe, no other descriptor of ours:\n%s",
	    log_text);
	close(fd);

	/* A command with quotes and spaces of its own. */
	rc = run("printf '%s|%s\\n' \"it's\" 'a \"quoted\" word' > \"$2\"", 10, why, sizeof(why),
		 NULL);
	tap_ok(rc == 0 && strcmp(read_text(output), "it's|a \"quoted\" word\n") == 0,
	       "quotes and spaces reach the shell intact: %s", read_text(output));

	/* Failures: the status, a signal, stderr in the log. */
	rc = run("echo 'loading weights'; echo 'error: bad layer 3' >&2; exit 3", 10, why,
		 sizeof(why), NULL);
	tap_ok(rc == -EIO && strcmp(why, "the converter exited with status 3") == 0,
	       "exit 3: -EIO: %s", why);
	tap_ok(strstr(log_text, "warning: test/entry: converter: error: bad layer 3\n") &&
		   strstr(log_text, "warning: test/entry: converter: loading weights\n"),
	       "stdout and stderr logged as warnings:\n%s", log_text);
	rc = run("cp \"$1\" \"$2\"; kill -9 $$", 10, why, sizeof(why), NULL);
	tap_ok(rc == -EIO && strstr(why, "killed by signal 9 (SIGKILL)"), "killed: -EIO: %s", why);

	/* Exit 0 without a usable output. */
	rc = run("echo done", 10, why, sizeof(why), NULL);
	tap_ok(rc == -EIO && strstr(why, "wrote no") && strstr(why, output), "no output: %s", why);
	rc = run(": > \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == -EIO && strstr(why, "is empty"), "empty output: %s", why);
	rc = run("ln -s \"$1\" \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == -EIO && strstr(why, "symbolic link"), "a symlink as output: %s", why);
	unlink(output);
	rc = run("mkdir \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == -EIO && strstr(why, "not a regular file"), "a directory as output: %s", why);
	rmdir(output);

	/* Much output: the last 4 KiB when it fails, the last 20 lines when
	 * it succeeds. */
	rc = run("seq 1 5000 >&2; exit 1", 10, why, sizeof(why), NULL);
	tap_ok(rc == -EIO && strstr(log_text, "converter: 5000\n") &&
		   !strstr(log_text, "converter: 1\n") &&
		   strstr(log_text, "earlier bytes not shown"),
	       "a failure logs the end of its output");
	tap_ok(count_lines(log_text, "converter: ") < 4096 / 5 + 2,
	       "at most 4 KiB of it (%d lines)", count_lines(log_text, "converter: "));
	rc = run("seq 1 100; cp \"$1\" \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == 0 && count_lines(log_text, "info: test/entry: converter: ") == 20 &&
		   strstr(log_text, "converter: 81\n") && strstr(log_text, "converter: 100\n"),
	       "a success logs its last 20 lines (%d)", count_lines(log_text, "converter: "));

	/* It closes its output early. */
	rc = run("exec > /dev/null 2>&1; sleep 0.3; cp \"$1\" \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == 0, "closing stdout early is fine (%d: %s)", rc, why);

	test_timeout();

	/* A daemon without 0, 1 and 2: the pipe gets them; the command must
	 * still get /dev/null and the pipe there. In a child, which has no
	 * TAP output to lose. */
	{
		pid_t child = fork();
		int status = -1;

		if (child == 0) {
			struct convert_job job = {
				.command = "echo out || exit 9; echo err >&2 || exit 8; "
					   "cp \"$1\" \"$2\"",
				.input = input,
				.output = output,
				.workdir = workdir,
				.timeout_seconds = 10,
			};
			char child_why[256];

			close(0);
			close(1);
			close(2);
			unlink(output);
			rc = convert_run(&job, child_why, sizeof(child_why));
			_exit(rc == 0 && strcmp(read_text(output), "weights\n") == 0 ? 0 : 1);
		}
		waitpid(child, &status, 0);
		tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		       "a caller with 0, 1 and 2 closed (status %d)", status);
	}

	/* It cannot start. */
	snprintf(workdir, sizeof(workdir), "%s/missing", work);
	rc = run("cp \"$1\" \"$2\"", 10, why, sizeof(why), NULL);
	tap_ok(rc == -ENOENT && strstr(why, "cannot start"), "a missing workdir: %s", why);

	snprintf(workdir, sizeof(workdir), "%s/work dir", work);
	test_by_name();

	tap_ok(tap_remove_tree(work) == 0, "temporary directory %s removed", work);
	return tap_done();
}
