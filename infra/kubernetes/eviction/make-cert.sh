#!/usr/bin/env bash
# Makes the eviction webhook's TLS material with openssl: a CA of its own and a serving certificate for
# the names the API server calls it by (default: the ms2m-webhook Service's DNS names).
#
# Usage: make-cert.sh <out-dir> [name-or-ip ...]
# Writes <out-dir>/{ca.crt,ca.key,tls.crt,tls.key} (kept if present: a CA bundle already installed stays
# valid) and prints the CA bundle for the ValidatingWebhookConfiguration's caBundle. Then:
#   kubectl -n ms2m-system create secret tls ms2m-webhook-tls --cert=<out-dir>/tls.crt --key=<out-dir>/tls.key
set -euo pipefail
out=${1:?usage: make-cert.sh <out-dir> [name-or-ip ...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ms2m-webhook.ms2m-system.svc ms2m-webhook.ms2m-system.svc.cluster.local)
command -v openssl >/dev/null || { echo "make-cert.sh: openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
umask 077
if [ ! -s "$out/ca.key" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ms2m webhook CA" -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
fi
if [ ! -s "$out/tls.key" ]; then
  san=$(for n in "${names[@]}"; do if [[ $n =~ ^[0-9.]+$ ]]; then printf 'IP:%s,' "$n"; else printf 'DNS:%s,' "$n"; fi; done)
  openssl req -newkey rsa:2048 -nodes -subj "/CN=${names[0]}" -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
  openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days 3650 \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "${san%,}") -out "$out/tls.crt" 2>/dev/null
  rm -f "$out/tls.csr"
fi
base64 -w0 < "$out/ca.crt"
echo
