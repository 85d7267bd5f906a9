/* Unit tests for the [ldap] options of auth/ldapdir: server-type defaults, the checks
 * that refuse unsafe settings (clear text, unauthenticated service binds), the filters
 * a login would send (AD in-chain included) and refusals that happen before any
 * network traffic. The LDAP conversation itself is tested against slapd in
 * tests/integration/test_auth_ldap.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "auth/ldapdir.h"
#include "lib/log.h"

struct holder {
	int h_other;
	struct ldapdir_config h_ldap;
};

static const struct config_option options[] = {
    LDAPDIR_CONFIG_OPTIONS(offsetof(struct holder, h_ldap)),
    CONFIG_END,
};

static int load(const char *text, struct holder *h, char *err)
{
	int r;

	memset(h, 0, sizeof(*h));
	r = config_load_string("t.conf", text, options, h, err, 256);
	if (r == 0)
		r = ldapdir_config_finish(&h->h_ldap, "t.conf", err, 256);
	return r;
}

static void test_openldap_defaults(void **state)
{
	struct holder h;
	char err[256] = "";

	(void)state;
	assert_int_equal(
	    load("[ldap]\nuri = ldap://127.0.0.1:389/\nbase_dn = dc=example,dc=com\n", &h, err), 0);
	struct ldapdir_config *c = &h.h_ldap;
	assert_int_equal(c->lc_server_type, LDAPDIR_OPENLDAP);
	assert_string_equal(c->lc_user_filter, "(&(objectClass=person)(uid=%s))");
	assert_string_equal(c->lc_username_attr, "uid");
	assert_string_equal(c->lc_group_base_dn, "dc=example,dc=com");
	assert_int_equal(c->lc_group_mode, LDAPDIR_GROUPS_SEARCH);
	assert_int_equal(c->lc_member_attr, LDAPDIR_MEMBER);
	assert_true(c->lc_nested_groups);
	assert_int_equal(c->lc_max_nesting, 8);
	assert_true(c->lc_require_tls);
	assert_false(c->lc_start_tls);
	assert_int_equal(c->lc_timeout, 5);
	assert_int_equal(c->lc_network_timeout, 3);
	assert_null(c->lc_bind_dn);

	char *f = ldapdir_user_filter(c, "alice)(|(uid=*");
	assert_string_equal(f, "(&(objectClass=person)(uid=alice\\29\\28|\\28uid=\\2a))");
	free(f);
	f = ldapdir_group_filter(c, "cn=Carol (QA) *Star*,ou=people,dc=example,dc=com", "carol");
	assert_string_equal(f, "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
			       "(objectClass=posixGroup))(member=cn=Carol \\28QA\\29 "
			       "\\2aStar\\2a,ou=people,dc=example,dc=com))");
	free(f);
	config_free(options, &h);
}

/* With server_type = ad and nested groups, one search with LDAP_MATCHING_RULE_IN_CHAIN
 * replaces the recursive walk: this is the filter Active Directory would receive. */
static void test_ad_in_chain(void **state)
{
	struct holder h;
	char err[256] = "";
	char *f;

	(void)state;
	assert_int_equal(load("[ldap]\nserver_type = ad\nuri = ldaps://dc1.corp.example.com\n"
			      "base_dn = DC=corp,DC=example,DC=com\n"
			      "bind_dn = CN=svc-vdi,OU=Service,DC=corp,DC=example,DC=com\n"
			      "bind_password = s3cret\ngroup_mode = memberof\n",
			      &h, err),
			 0);
	assert_string_equal(h.h_ldap.lc_user_filter,
			    "(&(objectCategory=person)(objectClass=user)(sAMAccountName=%s))");
	assert_string_equal(h.h_ldap.lc_username_attr, "sAMAccountName");
	f = ldapdir_user_filter(&h.h_ldap, "*");
	assert_string_equal(f, "(&(objectCategory=person)(objectClass=user)(sAMAccountName=\\2a))");
	free(f);
	/* user@domain: the userPrincipalName; DOMAIN\\user: the part after the backslash */
	f = ldapdir_user_filter(&h.h_ldap, "a*@corp.example.com");
	assert_string_equal(f, "(&(objectCategory=person)(objectClass=user)"
			       "(userPrincipalName=a\\2a@corp.example.com))");
	free(f);
	f = ldapdir_user_filter(&h.h_ldap, "CORP\\a(b)");
	assert_string_equal(
	    f, "(&(objectCategory=person)(objectClass=user)(sAMAccountName=a\\28b\\29))");
	free(f);
	f = ldapdir_group_filter(
	    &h.h_ldap, "CN=Smith\\, Alice (*),OU=Users,DC=corp,DC=example,DC=com", "asmith");
	assert_string_equal(
	    f, "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="
	       "CN=Smith\\5c, Alice \\28\\2a\\29,OU=Users,DC=corp,DC=example,DC=com))");
	free(f);
	/* without nesting, memberOf on the user entry is enough: no group search */
	h.h_ldap.lc_nested_groups = false;
	errno = 0;
	assert_null(ldapdir_group_filter(&h.h_ldap, "CN=x,DC=corp", "x"));
	assert_int_equal(errno, ENOENT);
	h.h_ldap.lc_group_mode = LDAPDIR_GROUPS_SEARCH;
	f = ldapdir_group_filter(&h.h_ldap, "CN=x,DC=corp", "x");
	assert_string_equal(f, "(&(objectClass=group)(member=CN=x,DC=corp))");
	free(f);
	config_free(options, &h);
}

static void test_member_uid(void **state)
{
	struct holder h;
	char err[256] = "";
	char *f;

	(void)state;
	assert_int_equal(
	    load("[ldap]\nuri = ldapi:///\nbase_dn = dc=example,dc=com\n"
		 "group_member_attr = memberUid\ngroup_filter = (objectClass=posixGroup)\n",
		 &h, err),
	    0);
	f = ldapdir_group_filter(&h.h_ldap, "uid=bob,dc=example,dc=com", "b*b");
	assert_string_equal(f, "(&(objectClass=posixGroup)(memberUid=b\\2ab))");
	free(f);
	config_free(options, &h);
}

static void expect_refused(const char *text, const char *message)
{
	struct holder h;
	char err[256] = "";

	assert_int_equal(load(text, &h, err), -EINVAL);
	if (!strstr(err, message))
		fail_msg("expected '%s' in '%s'", message, err);
	config_free(options, &h);
}

static void test_refused(void **state)
{
	(void)state;
	expect_refused("[ldap]\nbase_dn = dc=x\n", "t.conf: [ldap] uri is required");
	expect_refused("[ldap]\nuri = ldap://127.0.0.1\n", "base_dn is required");
	expect_refused("[ldap]\nuri = , ,\nbase_dn = dc=x\n", "uri is required");
	expect_refused("[ldap]\nuri = http://x\nbase_dn = dc=x\n", "is not an LDAP URL");
	/* clear text to a remote server unless explicitly allowed */
	expect_refused("[ldap]\nuri = ldap://ldap.example.com\nbase_dn = dc=x\n",
		       "would send passwords in clear text");
	expect_refused("[ldap]\nuri = ldap://127.0.0.1 ldap://10.0.0.5\nbase_dn = dc=x\n",
		       "'ldap://10.0.0.5' would send passwords in clear text");
	expect_refused("[ldap]\nuri = ldap://127.example.com\nbase_dn = dc=x\n", "clear text");
	expect_refused("[ldap]\nuri = ldaps://x\nstart_tls = yes\nbase_dn = dc=x\n",
		       "already uses TLS");
	/* a DN with an empty password is an unauthenticated bind */
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = dc=x\nbind_dn = cn=svc,dc=x\n",
		       "bind_password is empty");
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = dc=x\nbind_password = p\n",
		       "bind_password is set without bind_dn");
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = not a dn\n", "is not a DN");
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = dc=x\nuser_filter = (uid=alice)\n",
		       "user_filter");
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = dc=x\nuser_filter = uid=%s\n",
		       "user_filter");
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = dc=x\ngroup_filter = (member=%s)\n",
		       "group_filter");
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = dc=x\nusername_attr = u)(x\n",
		       "attribute names");
	expect_refused("[ldap]\nuri = ldaps://x\nbase_dn = dc=x\nca_file = /nonexistent/ca.pem\n",
		       "ca_file: /nonexistent/ca.pem");
}

static void test_allowed(void **state)
{
	struct holder h;
	char err[256] = "";

	(void)state;
	/* StartTLS, explicit opt-out, loopback and ldapi are fine */
	assert_int_equal(
	    load("[ldap]\nuri = ldap://ldap.example.com\nstart_tls = yes\nbase_dn = dc=x\n", &h,
		 err),
	    0);
	config_free(options, &h);
	assert_int_equal(
	    load("[ldap]\nuri = ldap://ldap.example.com\nrequire_tls = no\nbase_dn = dc=x\n", &h,
		 err),
	    0);
	config_free(options, &h);
	assert_int_equal(
	    load("[ldap]\nuri = ldap://[::1]:3389 ldap://localhost\nbase_dn = dc=x\n", &h, err), 0);
	config_free(options, &h);
}

/* Refusals that must happen before any packet: the URI points at a closed port, so a
 * connection attempt would show up as -EHOSTDOWN instead. */
static void test_refused_before_bind(void **state)
{
	struct holder h;
	struct identity *id = (struct identity *)1;
	char err[256] = "";

	(void)state;
	assert_int_equal(
	    load("[ldap]\nuri = ldap://127.0.0.1:1/\nbase_dn = dc=example,dc=com\n", &h, err), 0);
	assert_int_equal(ldapdir_login(&h.h_ldap, "alice", "", &id, err, sizeof(err)), -EACCES);
	assert_null(id);
	assert_string_equal(err, "empty password refused");
	assert_int_equal(ldapdir_login(&h.h_ldap, "ali\nce", "pw", &id, err, sizeof(err)), -EINVAL);
	assert_int_equal(ldapdir_login(&h.h_ldap, "", "pw", &id, err, sizeof(err)), -EINVAL);
	/* and with a valid request, the closed port is reported as such */
	assert_int_equal(ldapdir_login(&h.h_ldap, "alice", "pw", &id, err, sizeof(err)),
			 -EHOSTDOWN);
	config_free(options, &h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_openldap_defaults), cmocka_unit_test(test_ad_in_chain),
	    cmocka_unit_test(test_member_uid),	      cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_allowed),	      cmocka_unit_test(test_refused_before_bind),
	};
	log_init("auth_ldapdir_test", LOG_LEVEL_ERR, false);
	return cmocka_run_group_tests_name("auth_ldapdir", tests, NULL, NULL);
}
