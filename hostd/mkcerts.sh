#!/bin/sh
# Makes a small certificate authority and the certificates hostd and the broker use to
# authenticate each other (mutual TLS), with OpenSSL: for tests, `make certs` and demos.
# Not a PKI: a production site issues these from its own CA, following the same naming.
#
# usage: mkcerts.sh [-b NAME,...] DIR [HOST_ID[=NAME,...]...]
#   DIR/ca.crt ca.key                  the CA (EC P-256, 10 years)
#   DIR/broker.crt broker.key          vdi-broker: client of every hostd, server for
#                                      heartbeats; CN and DNS name "vdi-broker"
#   DIR/hosts/HOST_ID.crt HOST_ID.key  one vdi-hostd each: server (API and display relay)
#                                      and client (heartbeats); CN and DNS name HOST_ID
# The CN says who holds a certificate, and is what the other side checks: hostd lets in
# only the broker's name ([api] broker_name), the broker takes a host's heartbeats and
# answers only for the host id its certificate names. So each host gets its own
# certificate and key, and one host's cannot act as the broker or as another host.
# Every leaf also names 127.0.0.1, ::1 and localhost (the addresses it is reached on);
# a host the NAMEs after its '=', the broker those of -b (its heartbeat listener's): DNS
# names, or IPv4/IPv6 addresses. A host id is 1 to 64 of A-Z a-z 0-9 . _ - (as the
# broker's), and never the broker's name. Existing files are kept: delete them (or DIR)
# to issue again.
set -eu
usage() {
	echo "usage: $0 [-b NAME,...] DIR [HOST_ID[=NAME,...]...]" >&2
	exit 2
}
broker_names=
while getopts b: opt; do
	case $opt in
	b) broker_names=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
dir=$1
shift
broker_cn=vdi-broker

# Checked before anything is written.
for arg in "$@"; do
	id=${arg%%=*}
	case $id in
	"" | *[!A-Za-z0-9._-]* | -*)
		echo "$0: '$id': a host id is 1 to 64 of A-Z a-z 0-9 . _ -" >&2
		exit 2
		;;
	"$broker_cn")
		echo "$0: '$id' is the broker's name: a host of that id would act as the broker" >&2
		exit 2
		;;
	esac
	[ ${#id} -le 64 ] || { echo "$0: '$id': longer than 64 characters" >&2; exit 2; }
done

mkdir -p "$dir/hosts"
umask 077
days=3650

# subjectAltName for a certificate named $1 reached on the comma-separated names $2.
san() {
	s="DNS:$1,IP:127.0.0.1,IP:::1,DNS:localhost"
	old_ifs=$IFS
	IFS=,
	for name in $2; do
		case $name in
		"") ;;
		*[!0-9.]*) case $name in *:*) s="$s,IP:$name" ;; *) s="$s,DNS:$name" ;; esac ;;
		*) s="$s,IP:$name" ;;
		esac
	done
	IFS=$old_ifs
	echo "$s"
}

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f "$dir/ca.crt" ]; then
	key "$dir/ca.key"
	openssl req -x509 -new -key "$dir/ca.key" -sha256 -days $days -subj "/CN=vdi test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.crt"
fi

leaf() { # path-without-extension common-name subject-alt-names
	[ -f "$1.crt" ] && return 0
	key "$1.key"
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	printf '%s\n' "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth,clientAuth" \
		"subjectAltName=$3" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-CAcreateserial -days $days -sha256 -extfile "$1.ext" -out "$1.crt" \
		2>/dev/null
	rm -f "$1.csr" "$1.ext"
	chmod 644 "$1.crt"
}
leaf "$dir/broker" "$broker_cn" "$(san "$broker_cn" "$broker_names")"
hosts=
for arg in "$@"; do
	id=${arg%%=*}
	names=
	case $arg in *=*) names=${arg#*=} ;; esac
	leaf "$dir/hosts/$id" "$id" "$(san "$id" "$names")"
	hosts="$hosts hosts/$id.crt/.key"
done
chmod 644 "$dir/ca.crt"
chmod 755 "$dir/hosts"
echo "certificates in $dir: ca.crt, broker.crt/.key$hosts"
