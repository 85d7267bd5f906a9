#!/bin/sh
# Makes a small certificate authority and the certificates hostd and the broker use to
# authenticate each other (mutual TLS), with OpenSSL: for tests, `make certs` and demos.
# Not a PKI: a production site issues these from its own CA.
#
# usage: mkcerts.sh DIR [NAME...]
#   DIR/ca.crt ca.key          the CA (EC P-256, 10 years)
#   DIR/hostd.crt hostd.key    vdi-hostd: server (API and display relay) and client (heartbeat)
#   DIR/broker.crt broker.key  vdi-broker: client of hostd, server for heartbeats
# Both leaf certificates name 127.0.0.1, ::1 and localhost, plus each NAME given (a DNS
# name, or an IPv4/IPv6 address). Existing files are kept: delete DIR to start again.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [NAME...]" >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
umask 077
days=3650

san="IP:127.0.0.1,IP:::1,DNS:localhost"
for name in "$@"; do
	case $name in
	*[!0-9.]* | "") case $name in *:*) san="$san,IP:$name" ;; *) san="$san,DNS:$name" ;; esac ;;
	*) san="$san,IP:$name" ;;
	esac
done

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f "$dir/ca.crt" ]; then
	key "$dir/ca.key"
	openssl req -x509 -new -key "$dir/ca.key" -sha256 -days $days -subj "/CN=vdi test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.crt"
fi

leaf() { # name common-name
	[ -f "$dir/$1.crt" ] && return 0
	key "$dir/$1.key"
	openssl req -new -key "$dir/$1.key" -subj "/CN=$2" -out "$dir/$1.csr"
	printf '%s\n' "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth,clientAuth" \
		"subjectAltName=$san" >"$dir/$1.ext"
	openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-CAcreateserial -days $days -sha256 -extfile "$dir/$1.ext" -out "$dir/$1.crt" \
		2>/dev/null
	rm -f "$dir/$1.csr" "$dir/$1.ext"
}
leaf hostd vdi-hostd
leaf broker vdi-broker
chmod 644 "$dir"/*.crt
echo "certificates in $dir: ca.crt, hostd.crt/.key, broker.crt/.key"
