/* cmd_env.c: omnihub env: the shell lines that point each client at its
 * view of a mount (<mount>/.clients/), for eval in sh/bash, fish, or JSON.
 * Not for: the views themselves (hub_views.c) or finding mounts (cmd_status.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "cmd_out.h"
#include "hub_views.h"

/* One variable a client reads; set only when the mount shows its view's
 * folder, so a build or mount without that view sets nothing wrong. */
struct env_var {
	const char *name;
	const char *folder; /* in the views; the value is its absolute path */
	const char *value;  /* else this literal (an offline switch) */
	const char *needs;  /* the view folder that must exist */
};

static const struct env_var env_vars[] = {
    /* torch.hub: $TORCH_HOME/hub/checkpoints/<basename of the URL> */
    {"TORCH_HOME", "torch", NULL, "torch"},
    /* onnx.hub: $ONNX_HOME/hub/<dir of model_path>/<sha256>_<basename>;
     * it still asks the network for its manifest first */
    {"ONNX_HOME", "onnx", NULL, "onnx"},
    /* tensorflow_hub: $TFHUB_CACHE_DIR/<sha1 of the handle>/, extracted */
    {"TFHUB_CACHE_DIR", "tfhub", NULL, "tfhub"},
    /* huggingface_hub: $HF_HUB_CACHE/models--org--name/...; offline, it
     * reads refs/ and snapshots/ only and never writes (man page, CLIENTS) */
    {"HF_HUB_CACHE", "huggingface/hub", NULL, "huggingface/hub"},
    {"HF_HUB_OFFLINE", NULL, "1", "huggingface/hub"},
};

/* Keras falls back to /tmp/.keras when its cache folder is not writable:
 * only a link from a writable ~/.keras into the view works. */
#define KERAS_FOLDER "keras/models"
/* Deeplearning4j reads a Java system property, not a variable
 * (DL4JSystemProperties.DL4J_RESOURCES_DIR_PROPERTY, read by
 * DL4JResources.resetBaseDirectoryLocation): printed, never exported, so
 * no other JVM's JAVA_TOOL_OPTIONS is touched. */
#define DL4J_FOLDER "dl4j"
#define DL4J_PROPERTY "org.deeplearning4j.resources.directory"
/* OmniHub's OmnihubConfig.getOmnihubHome() takes $OMNIHUB_HOME's presence
 * but not its value (it returns new File("OMNIHUB_HOME"), relative to the
 * working folder), so only its default ~/.omnihub can point into the view,
 * and that is also omnihub-fuse's default cache: each framework folder
 * (~/.omnihub/<framework>/, which the cache does not use) is linked, never
 * the whole home; the variable is left alone. */
#define OMNIHUB_FOLDER "omnihub"

enum env_form { ENV_SH, ENV_FISH, ENV_JSON };

/* value in single quotes for sh (' as '\'') or fish (\' and \\). */
static void print_quoted(FILE *out, const char *value, enum env_form form)
{
	fputc('\'', out);
	for (const char *c = value; *c; c++) {
		if (*c == '\'' && form == ENV_SH)
			fputs("'\\''", out);
		else if ((*c == '\'' || *c == '\\') && form == ENV_FISH)
			fprintf(out, "\\%c", *c);
		else
			fputc(*c, out);
	}
	fputc('\'', out);
}

/* A view's folder: <root>/.clients/<folder>; false when too long. */
static bool view_path(const char *root, const char *folder, char out[PATH_MAX])
{
	int n = snprintf(out, PATH_MAX, "%s/%s/%s", root, HUB_VIEWS_NAME, folder);

	return n >= 0 && n < PATH_MAX;
}

static bool is_dir(const char *root, const char *folder)
{
	char path[PATH_MAX];
	struct stat st;

	return view_path(root, folder, path) && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int not_hidden(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* The OmniHub view's framework folders, sorted; *count 0 when there is no
 * view. The caller frees each and the array. */
static int omnihub_frameworks(const char *root, struct dirent ***names, int *count)
{
	char path[PATH_MAX];
	int rc = 0;

	*names = NULL;
	*count = 0;
	if (!is_dir(root, OMNIHUB_FOLDER) || !view_path(root, OMNIHUB_FOLDER, path))
		goto out;
	*count = scandir(path, names, not_hidden, alphasort);
	if (*count < 0) {
		rc = -errno;
		*count = 0;
		*names = NULL;
	}
out:
	return rc;
}

static void free_names(struct dirent **names, int count)
{
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* The one mount to print for: the one given, else the only one there is. */
static int pick_mount(struct cmd_ctx *ctx, const char *cmd, const char *given, char *out)
{
	char **paths = NULL;
	size_t count = 0;
	int rc = 0;

	if (given) {
		if (!realpath(given, out)) {
			rc = -errno;
			cmd_error(ctx, given, "%s", strerror(errno));
		}
		goto out;
	}
	rc = cmd_find_mounts(&paths, &count);
	if (rc)
		cmd_error(ctx, "/proc/self/mountinfo", "%s", strerror(-rc));
	else if (count != 1) {
		rc = -EINVAL;
		cmd_error(ctx, cmd,
		          count ? "%zu omnihub-fuse mounts: give one's mount point"
		                : "no omnihub-fuse mount (give its mount point)",
		          count);
	} else if (snprintf(out, PATH_MAX, "%s", paths[0]) >= PATH_MAX) {
		rc = -ENAMETOOLONG;
	}
out:
	for (size_t i = 0; i < count; i++)
		free(paths[i]);
	free(paths);
	return rc;
}

static int print_json(struct cmd_ctx *ctx, const char *root)
{
	cJSON *doc = cJSON_CreateObject(), *vars, *links, *link, *props;
	char path[PATH_MAX], folder[NAME_MAX + 16];
	struct dirent **names;
	int count;

	vars = doc ? cJSON_AddObjectToObject(doc, "variables") : NULL;
	links = doc ? cJSON_AddArrayToObject(doc, "links") : NULL;
	if (!vars || !links || !cJSON_AddStringToObject(doc, "mountpoint", root)) {
		cJSON_Delete(doc);
		return CMD_EXIT_FAILED;
	}
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
		const struct env_var *v = &env_vars[i];
		if (!is_dir(root, v->needs) || (v->folder && !view_path(root, v->folder, path)))
			continue;
		cJSON_AddStringToObject(vars, v->name, v->folder ? path : v->value);
	}
	if (is_dir(root, KERAS_FOLDER) && view_path(root, KERAS_FOLDER, path) &&
	    (link = cJSON_CreateObject()) != NULL) {
		cJSON_AddStringToObject(link, "client", "keras");
		cJSON_AddStringToObject(link, "link", "~/.keras/models");
		cJSON_AddStringToObject(link, "target", path);
		cJSON_AddItemToArray(links, link);
	}
	omnihub_frameworks(root, &names, &count);
	for (int i = 0; i < count; i++) {
		char home_link[NAME_MAX + 16];

		snprintf(folder, sizeof(folder), "%s/%s", OMNIHUB_FOLDER, names[i]->d_name);
		snprintf(home_link, sizeof(home_link), "~/.omnihub/%s", names[i]->d_name);
		if (!view_path(root, folder, path) || (link = cJSON_CreateObject()) == NULL)
			continue;
		cJSON_AddStringToObject(link, "client", "omnihub");
		cJSON_AddStringToObject(link, "link", home_link);
		cJSON_AddStringToObject(link, "target", path);
		cJSON_AddItemToArray(links, link);
	}
	free_names(names, count);
	if (is_dir(root, DL4J_FOLDER) && view_path(root, DL4J_FOLDER, path) &&
	    (props = cJSON_AddObjectToObject(doc, "java_properties")) != NULL)
		cJSON_AddStringToObject(props, DL4J_PROPERTY, path);
	return cmd_print_json(ctx, doc);
}

static void print_shell(struct cmd_ctx *ctx, const char *root, enum env_form form)
{
	char path[PATH_MAX];
	struct dirent **names;
	int count;

	fprintf(ctx->out, "# the views of the omnihub-fuse mount %s (omnihub-fuse(1), CLIENTS)\n",
	        root);
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
		const struct env_var *v = &env_vars[i];
		if (!is_dir(root, v->needs) || (v->folder && !view_path(root, v->folder, path)))
			continue;
		fprintf(ctx->out, form == ENV_FISH ? "set -gx %s " : "export %s=", v->name);
		print_quoted(ctx->out, v->folder ? path : v->value, form);
		fputs(form == ENV_FISH ? ";\n" : "\n", ctx->out);
	}
	if (is_dir(root, KERAS_FOLDER) && view_path(root, KERAS_FOLDER, path)) {
		fputs("# Keras writes its cache folder or uses /tmp/.keras: link it once with\n"
		      "#   ln -s ",
		      ctx->out);
		print_quoted(ctx->out, path, form);
		fputs(" ~/.keras/models\n", ctx->out);
	}
	if (is_dir(root, DL4J_FOLDER) && view_path(root, DL4J_FOLDER, path)) {
		fputs("# Deeplearning4j reads a Java system property: start the JVM with\n"
		      "#   -D" DL4J_PROPERTY "=",
		      ctx->out);
		print_quoted(ctx->out, path, form);
		fputs("\n", ctx->out);
	}
	omnihub_frameworks(root, &names, &count);
	if (count > 0) {
		fputs("# OmniHub ignores $OMNIHUB_HOME's value (leave it unset): link its framework\n"
		      "# folders into ~/.omnihub once with\n"
		      "#   mkdir -p ~/.omnihub && ln -s",
		      ctx->out);
		for (int i = 0; i < count; i++) {
			char folder[NAME_MAX + 16];

			snprintf(folder, sizeof(folder), "%s/%s", OMNIHUB_FOLDER, names[i]->d_name);
			if (!view_path(root, folder, path))
				continue;
			fputc(' ', ctx->out);
			print_quoted(ctx->out, path, form);
		}
		fputs(" ~/.omnihub/\n", ctx->out);
	}
	free_names(names, count);
}

static const struct option env_longopts[] = {
    {"json", no_argument, NULL, 'j'},
    {"fish", no_argument, NULL, 'f'},
    {"sh", no_argument, NULL, 's'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_env_opts = {"", env_longopts};

int cmd_env(struct cmd_ctx *ctx, int argc, char **argv)
{
	enum env_form form = ENV_SH;
	char root[PATH_MAX];
	int c, status = CMD_EXIT_OK;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_env_opts)) != -1) {
		if (c == 'j')
			ctx->json = true;
		else if (c == 'f')
			form = ENV_FISH;
		else if (c == 's')
			form = ENV_SH;
		else
			return CMD_EXIT_USAGE;
	}
	if (ctx->json)
		form = ENV_JSON;
	if (argc - optind > 1)
		return cmd_usage_error(ctx, argv[0], "takes at most one mount point (%d given)",
		                       argc - optind);
	if (pick_mount(ctx, argv[0], argc - optind == 1 ? argv[optind] : NULL, root) != 0) {
		status = CMD_EXIT_FAILED;
		goto out;
	}
	if (!is_dir(root, "")) {
		cmd_error(ctx, root,
		          "shows no %s folder: not an omnihub-fuse mount with views (omnihub "
		          "status shows every mount)",
		          HUB_VIEWS_NAME);
		status = CMD_EXIT_FAILED;
		goto out;
	}
	if (form == ENV_JSON)
		status = print_json(ctx, root);
	else
		print_shell(ctx, root, form);
out:
	return status;
}
