#!/usr/bin/env bash
# Regenerates the test PKI used by the loopback SMTP server (tests/support/smtp/server.js):
#   ca.pem          test CA certificate (trust this one in clients: rustls, msmtp tls_trust_file)
#   server.pem      leaf certificate for 127.0.0.1 / localhost, signed by the CA
#   server-key.pem  the leaf's private key
# A lone self-signed certificate will not do: it is a CA certificate, and rustls refuses it as
# a server certificate (CaUsedAsEndEntity). Keys are ECDSA P-256; both certificates are valid
# for 100 years so the committed files never expire under the tests. The CA key is thrown
# away: nothing else is ever signed with it. TEST USE ONLY: the private key is public.
set -euo pipefail
cd "$(dirname "$0")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca-key.pem"
openssl req -x509 -new -sha256 -days 36525 -key "$work/ca-key.pem" -out "$work/ca.pem" \
  -subj "/O=mailer tests/CN=mailer test CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash"

openssl ecparam -name prime256v1 -genkey -noout -out "$work/server-key.ec.pem"
# PKCS#8, the form every TLS stack reads.
openssl pkcs8 -topk8 -nocrypt -in "$work/server-key.ec.pem" -out "$work/server-key.pem"
openssl req -new -sha256 -key "$work/server-key.pem" -out "$work/server.csr" \
  -subj "/O=mailer tests/CN=localhost"
cat > "$work/leaf.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EXT
openssl x509 -req -sha256 -days 36500 -in "$work/server.csr" \
  -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" -set_serial "0x$(openssl rand -hex 16)" \
  -extfile "$work/leaf.ext" -out "$work/server.pem"
openssl verify -CAfile "$work/ca.pem" "$work/server.pem" >/dev/null

cp "$work/ca.pem" "$work/server.pem" "$work/server-key.pem" .
echo "wrote ca.pem server.pem server-key.pem in $(pwd)"
