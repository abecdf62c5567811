/* test_names.c: unit tests of names.c: which untrusted paths are refused
 * and how display names become directory names. Not for: manifest parsing. */
#include "build_config.h"

#include <errno.h>
#include <string.h>

#include "names.h"
#include "tap.h"

static void relpath(const char *path, int want_ok, const char *what)
{
	const char *why = NULL;
	int rc = names_check_relpath(path, &why);

	tap_ok(want_ok ? rc == 0 : (rc == -EINVAL && why != NULL), "relpath %s (%s)", what,
	       rc ? why : "accepted");
}

static void dirname_is(const char *display, const char *want, const char *what)
{
	char out[NAME_MAX + 1];
	const char *why = NULL;
	int rc = names_to_dirname(display, out, &why);

	if (want)
		tap_ok(rc == 0 && strcmp(out, want) == 0, "dirname %s: '%s'", what,
		       rc == 0 ? out : why);
	else
		tap_ok(rc == -EINVAL && why != NULL, "dirname %s refused (%s)", what,
		       rc ? why : out);
}

int main(void)
{
	char long_name[NAME_MAX + 2], lower[NAME_MAX + 1], long_path[NAMES_PATH_MAX + 16];
	char shown[16];

	relpath("validated/vision/classification/mnist/model/mnist-8.onnx", 1, "zoo path");
	relpath("a", 1, "one component");
	relpath("a.b/..c/c..", 1, "dots inside names");
	relpath("", 0, "empty");
	relpath("/etc/passwd", 0, "absolute");
	relpath("validated/../../etc/passwd", 0, "dot-dot");
	relpath("..", 0, "bare dot-dot");
	relpath("a/./b", 0, "dot component");
	relpath("a//b", 0, "empty component");
	relpath("a/b/", 0, "trailing slash");
	relpath("a/b\x01" "c", 0, "control character");
	relpath("a/b\nc", 0, "newline");
	relpath("a\x7f", 0, "DEL");

	memset(long_name, 'x', NAME_MAX);
	long_name[NAME_MAX] = '\0';
	relpath(long_name, 1, "component of NAME_MAX bytes");
	long_name[NAME_MAX] = 'x';
	long_name[NAME_MAX + 1] = '\0';
	relpath(long_name, 0, "component over NAME_MAX");
	for (size_t i = 0; i < sizeof(long_path) - 1; i++)
		long_path[i] = (i % 100 == 99) ? '/' : 'p';
	long_path[sizeof(long_path) - 1] = '\0';
	relpath(long_path, 0, "path over NAMES_PATH_MAX");

	dirname_is("ResNet18", "resnet18", "upper case");
	dirname_is("Mobile Net", "mobile-net", "space");
	dirname_is("mobile-net", "mobile-net", "already fine");
	dirname_is("\xc3\x9c" "ber_Model v2.0", "uber_model-v2.0", "U with diaeresis spelt U");
	dirname_is("Caf\xc3\xa9 Stra\xc3\x9f" "e", "cafe-strasse", "e acute, sharp s");
	dirname_is("\xc5\x81\xc3\xb3" "d\xc5\xba \xc3\x86sir \xc5\x92uvre", "lodz-aesir-oeuvre",
	           "Latin Extended-A letters and ligatures");
	dirname_is("a\xc3\x97" "b", "a-b", "multiplication sign is no letter");
	dirname_is("x\xe2\x82\xac" "y", "x-y", "other UTF-8 character counts once");
	dirname_is("a/b\\c", "a-b-c", "slashes");
	dirname_is("a\x01x", "a-x", "control character");
	dirname_is("\x01x", "x", "control character first: left out");
	dirname_is("-rf", "rf", "never begins with '-'");
	dirname_is(".hidden", "hidden", "never begins with '.'");
	dirname_is("--.-x.", "x.", "leading dashes and dots all left out");
	dirname_is("\xe2\x82\xac" "5", "5", "leading replaced character left out");
	dirname_is("a\xff\xfe" "b", "a--b", "invalid UTF-8 bytes each count");
	dirname_is("\xff\xfe", NULL, "nothing left");
	dirname_is("---", NULL, "dashes only");
	dirname_is("..", NULL, "'..'");
	dirname_is(".", NULL, "'.'");
	dirname_is("", NULL, "empty");
	memset(long_name, 'M', NAME_MAX);
	long_name[NAME_MAX] = '\0';
	memset(lower, 'm', NAME_MAX);
	lower[NAME_MAX] = '\0';
	dirname_is(long_name, lower, "NAME_MAX letters");
	long_name[NAME_MAX] = 'M';
	long_name[NAME_MAX + 1] = '\0';
	dirname_is(long_name, NULL, "over NAME_MAX");

	tap_ok(strcmp(names_for_log("a\nb\x1b[31m", shown, sizeof(shown)), "a?b?[31m") == 0,
	       "names_for_log hides control characters: %s", shown);
	tap_ok(strlen(names_for_log("0123456789abcdefghij", shown, sizeof(shown))) == 15,
	       "names_for_log truncates to its buffer");
	return tap_done();
}
