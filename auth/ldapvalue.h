/* What a directory answer holds, checked before it is used: attribute values as text, a
 * DN's first RDN value and its normalised form, Active Directory's primary group (the
 * user's objectSid with the primaryGroupID as the last sub-authority) and the account
 * state in the "data" code of a bind refusal. Pure functions over bytes the server
 * sent; ldapdir.c gets the values from libldap and hands them here. */
#ifndef VDI_AUTH_LDAPVALUE_H
#define VDI_AUTH_LDAPVALUE_H

#include <stddef.h>

/* A NUL-terminated copy of len bytes of a value if they are acceptable text
 * (identity_valid_text(): UTF-8, no control characters, at most max bytes), else NULL. */
char *ldapvalue_text(const char *value, size_t len, size_t max);

/* The value of dn's first RDN ("cn=staff,ou=groups,..." -> "staff"; of a multi-valued
 * RDN its first value) as text of at most max bytes, or NULL (not a DN, a binary value,
 * not text). */
char *ldapvalue_rdn(const char *dn, size_t max);

/* A normalised copy of dn (RFC 4514 form, for case-insensitive comparison): dn itself
 * when libldap cannot parse it, NULL when longer than max bytes or out of memory. */
char *ldapvalue_normalise_dn(const char *dn, size_t max);

/* The filter "(objectSid=\xx\xx...)" matching a user's primary group in Active
 * Directory: the user's SID (binary, revision 1 layout: 8 bytes then 1..15
 * sub-authorities of 4) with its last sub-authority replaced by rid_text (decimal, 1 to
 * 2^32 - 1). NULL when the SID or the RID is malformed, or out of memory. */
char *ldapvalue_primary_group_filter(const void *sid, size_t sid_len, const char *rid_text);

/* The hexadecimal code after "data " in Active Directory's diagnostic message of a
 * refused bind ("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext
 * error, data 773, v4563" -> 0x773), or 0 when there is none. */
unsigned ldapvalue_ad_data_code(const char *diagnostic);

/* The error code leading Active Directory's (and Samba's) diagnostic message of a
 * refused operation ("00000056: Constraint violation ..." -> 0x56), or 0. */
unsigned ldapvalue_ad_error_code(const char *diagnostic);

#endif
