/* cmd_whoami.c: omnihub whoami: the Hugging Face account the token found
 * belongs to (the Hub's /api/whoami-v2), its orgs, and where the token came
 * from. Not for: finding the token (hf_token.c) or the Hub's API (hf_api.c);
 * the token itself is never printed. */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_out.h"
#include "config.h"
#include "fetch.h"
#include "hf_api.h"
#include "hf_token.h"
#include "json.h"

#define WHOAMI_ENDPOINT_DEFAULT "https://huggingface.co"

const char cmd_whoami_help[] =
    "Asks the Hugging Face Hub (hf_endpoint, else $HF_ENDPOINT) whose the\n"
    "token is, as the mount finds it ($HF_TOKEN, $HF_TOKEN_PATH,\n"
    "$HF_HOME/token, -o hf_token_file), and prints the account, its orgs and\n"
    "where the token came from; never the token. Exits with 1 offline,\n"
    "without a token, or when the Hub refuses it, saying what to do.\n"
    "\n"
    "    --json                 print one JSON document: {\"name\", \"fullname\",\n"
    "                           \"orgs\", \"token_from\", \"token_role\",\n"
    "                           \"endpoint\"}\n";

/* The Hub's JSON made ours: what a script needs, nothing of the token. */
static cJSON *account_json(const cJSON *account, const char *from, const char *endpoint)
{
	const cJSON *orgs = cJSON_GetObjectItemCaseSensitive(account, "orgs"), *org;
	const cJSON *auth = cJSON_GetObjectItemCaseSensitive(account, "auth");
	const cJSON *token = auth ? cJSON_GetObjectItemCaseSensitive(auth, "accessToken") : NULL;
	const char *role = token ? json_string(token, "role") : NULL;
	const char *fullname = json_string(account, "fullname");
	cJSON *doc = cJSON_CreateObject(), *names = cJSON_CreateArray();

	if (!doc || !names)
		goto fail;
	cJSON_AddItemToObject(doc, "name", cJSON_CreateString(json_string(account, "name")));
	cJSON_AddItemToObject(doc, "fullname",
	                      fullname ? cJSON_CreateString(fullname) : cJSON_CreateNull());
	cJSON_ArrayForEach(org, orgs)
	{
		const char *name = json_string(org, "name");
		if (name)
			cJSON_AddItemToArray(names, cJSON_CreateString(name));
	}
	cJSON_AddItemToObject(doc, "orgs", names);
	names = NULL;
	cJSON_AddItemToObject(doc, "token_from", cJSON_CreateString(from));
	cJSON_AddItemToObject(doc, "token_role",
	                      role ? cJSON_CreateString(role) : cJSON_CreateNull());
	cJSON_AddItemToObject(doc, "endpoint", cJSON_CreateString(endpoint));
	return doc;
fail:
	cJSON_Delete(names);
	cJSON_Delete(doc);
	return NULL;
}

static int print_account(const struct cmd_ctx *ctx, cJSON *doc)
{
	const cJSON *orgs = cJSON_GetObjectItemCaseSensitive(doc, "orgs"), *org;
	const char *role = json_string(doc, "token_role");
	bool first = true;

	if (!doc) {
		cmd_error(ctx, "whoami", "out of memory");
		return CMD_EXIT_FAILED;
	}
	if (ctx->json)
		return cmd_print_json(ctx, doc);
	fprintf(ctx->out, "%s\n", json_string(doc, "name"));
	fprintf(ctx->out, "orgs: ");
	cJSON_ArrayForEach(org, orgs)
	{
		fprintf(ctx->out, "%s%s", first ? "" : ", ", org->valuestring);
		first = false;
	}
	fprintf(ctx->out, "%s\n", first ? "none" : "");
	fprintf(ctx->out, "token: from %s%s%s\n", json_string(doc, "token_from"),
	        role ? ", role " : "", role ? role : "");
	fprintf(ctx->out, "endpoint: %s\n", json_string(doc, "endpoint"));
	cJSON_Delete(doc);
	return CMD_EXIT_OK;
}

static const struct option whoami_longopts[] = {
    {"json", no_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_whoami_opts = {"", whoami_longopts};

int cmd_whoami(struct cmd_ctx *ctx, int argc, char **argv)
{
	const char *given = config_hub_option(ctx->cfg, "hf_endpoint");
	char endpoint[1024], origin[320], why[4 * PATH_MAX];
	char from[PATH_MAX];
	struct hf_token token;
	struct hf_refusal refusal;
	struct fetcher *fetcher = NULL;
	struct hf_api api = {.name = "whoami"};
	cJSON *account = NULL;
	bool token_open = false;
	int status = CMD_EXIT_FAILED, c, rc;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_whoami_opts)) != -1) {
		if (c != 'j')
			return CMD_EXIT_USAGE;
		ctx->json = true;
	}
	if (optind < argc)
		return cmd_usage_error(ctx, "whoami", "takes no argument");
	snprintf(endpoint, sizeof(endpoint), "%s", given ? given : WHOAMI_ENDPOINT_DEFAULT);
	endpoint[strcspn(endpoint, "?#")] = '\0';
	while (endpoint[0] && endpoint[strlen(endpoint) - 1] == '/')
		endpoint[strlen(endpoint) - 1] = '\0';
	if (fetch_url_origin(endpoint, origin, sizeof(origin)) != 0) {
		cmd_error(ctx, "whoami",
		          "the endpoint %s is not an http(s) URL: set hf_endpoint or "
		          "$HF_ENDPOINT to the Hub's URL",
		          endpoint);
		status = CMD_EXIT_USAGE;
		goto out;
	}
	rc = hf_token_open(&token, ctx->cfg, why, sizeof(why));
	token_open = true;
	if (rc) {
		cmd_error(ctx, "whoami", "%s: fix or remove it, or set HF_TOKEN", why);
		goto out;
	}
	if (!token.header) {
		hf_token_why_none(&token, why, sizeof(why));
		cmd_error(ctx, "whoami", "not logged in (%s): set HF_TOKEN, or run `hf auth login`",
		          why);
		goto out;
	}
	snprintf(from, sizeof(from), "%s", token.from);
	if (config_hub_offline(ctx->cfg, "huggingface") || config_env_true("HF_HUB_OFFLINE")) {
		cmd_error(ctx, "whoami",
		          "offline (--offline, -o offline or $HF_HUB_OFFLINE): the "
		          "Hub is not asked; the token is from %s",
		          from);
		goto out;
	}
	rc = fetcher_new(&fetcher, ctx->cfg->cacert);
	if (rc == 0)
		rc = fetcher_set_proxy(fetcher, ctx->cfg->proxy_from_env ? NULL : ctx->cfg->proxy);
	if (rc) {
		cmd_error(ctx, "whoami", "cannot start HTTP: %s", strerror(-rc));
		goto out;
	}
	api.fetcher = fetcher;
	api.endpoint = endpoint;
	api.origin = origin;
	api.token = &token;
	api.retries = ctx->cfg->retries;
	api.retry_time = (long)ctx->cfg->retry_time;
	rc = hf_api_whoami(&api, &account, &refusal);
	if (rc == -EACCES || rc == -ENOENT) {
		cmd_error(
		    ctx, "whoami",
		    "the Hub refused the token from %s (HTTP %ld%s%s): it is wrong or revoked; "
		    "make one at %s/settings/tokens, then set HF_TOKEN or run `hf auth login`",
		    from, refusal.status, refusal.message[0] ? ": " : "", refusal.message,
		    endpoint);
		goto out;
	}
	if (rc) {
		cmd_error(ctx, "whoami",
		          "cannot ask %s: %s (see the lines above; check the network, "
		          "hf_endpoint or -o proxy)",
		          endpoint, strerror(-rc));
		goto out;
	}
	status = print_account(ctx, account_json(account, from, endpoint));
out:
	cJSON_Delete(account);
	fetcher_free(fetcher);
	if (token_open)
		hf_token_close(&token);
	return status;
}
