#!/bin/sh
# tls_certs.sh DIR — makes the certificates of the TLS tests in DIR with the openssl command
# (ECDSA P-256, nothing is checked in):
#   ca.pem, ca.key              root CA "weft test CA"
#   server.pem, server.key      DNS:localhost + IP:127.0.0.1, serial 1001 (0x3E9), by the CA
#   server2.pem, server2.key    same names, serial 1002 (0x3EA), signed by an intermediate CA:
#                               the file is the leaf followed by the intermediate (a chain)
#   expired.pem, expired.key    localhost + 127.0.0.1 by the CA, expired yesterday, serial 1003
#   wronghost.pem, wronghost.key  DNS:wrong.example only, by the CA, serial 1004
#   selfsigned.pem, selfsigned.key  localhost + 127.0.0.1, self-signed, serial 1005
#   other.key                   a key that matches no certificate
#   garbage.pem                 not PEM at all
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

cat > leaf.ext <<'EOF'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
EOF
sed 's/^subjectAltName.*/subjectAltName = DNS:wrong.example/' leaf.ext > wrong.ext
cat > inter.ext <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

key ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=weft test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null

# leaf NAME SERIAL DAYS EXTFILE ISSUER_PEM ISSUER_KEY
leaf() {
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$5" -CAkey "$6" -set_serial "$2" -days "$3" \
        -extfile "$4" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr"
}

leaf server 1001 30 leaf.ext ca.pem ca.key
leaf expired 1003 -1 leaf.ext ca.pem ca.key
leaf wronghost 1004 30 wrong.ext ca.pem ca.key

key inter.key
openssl req -new -key inter.key -out inter.csr -subj "/CN=weft test intermediate" 2>/dev/null
openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -set_serial 2001 -days 30 \
    -extfile inter.ext -out inter.pem 2>/dev/null
leaf server2 1002 30 leaf.ext inter.pem inter.key
cat inter.pem >> server2.pem

key selfsigned.key
openssl req -x509 -new -key selfsigned.key -out selfsigned.pem -days 30 -subj "/CN=localhost" \
    -set_serial 1005 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

key other.key
echo "this is not a certificate" > garbage.pem
