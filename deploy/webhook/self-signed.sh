#!/usr/bin/env bash
# The webhook without cert-manager: makes a CA and a serving certificate it signs (ECDSA P-256,
# for jackstop-webhook.jackstop.svc) and writes DIR, a kustomization on top of deploy/ that
# holds them as the Secret jackstop-webhook-tls, writes the CA into the
# ValidatingWebhookConfiguration's caBundle, and leaves out deploy/'s cert-manager objects.
#
#   deploy/webhook/self-signed.sh DIR && kubectl apply -k DIR
#
# Nothing renews these: the serving certificate is valid for DAYS (default 825); run the script
# again into the same DIR and apply before then (the webhook re-reads the mounted files, no
# restart). DIR holds the CA's private key: keep it out of version control, or delete
# DIR/ca.key once applied (a renewal then makes a new CA, which the apply also installs).
set -euo pipefail
dir="${1:?usage: self-signed.sh DIR [DAYS=825]}"; days="${2:-825}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v openssl >/dev/null || { echo "self-signed.sh: openssl is required" >&2; exit 2; }
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
base="$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$here/.." "$dir" 2>/dev/null \
  || realpath --relative-to="$dir" "$here/..")"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
umask 077
if [[ ! -s "$dir/ca.key" || ! -s "$dir/ca.crt" ]]; then
  openssl req -x509 "${ec[@]}" -days 3650 -subj /CN=jackstop-webhook-ca \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
fi
openssl req "${ec[@]}" -subj /CN=jackstop-webhook.jackstop.svc \
  -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
printf '%s\n' 'subjectAltName=DNS:jackstop-webhook.jackstop.svc,DNS:jackstop-webhook.jackstop.svc.cluster.local' \
  'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature' 'extendedKeyUsage=serverAuth' > "$dir/tls.ext"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days "$days" -sha256 -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null
rm -f "$dir/tls.csr" "$dir/tls.ext" "$dir/ca.srl"
ca_bundle="$(base64 < "$dir/ca.crt" | tr -d '\n')"
# One caBundle per webhook of the configuration.
n=$(grep -c '^  - name: .*\.jackstop\.dev$' "$here/validatingwebhookconfiguration.yaml")
{
  echo "# Written by deploy/webhook/self-signed.sh: deploy/ with a self-signed serving certificate"
  echo "# instead of cert-manager's. Apply with: kubectl apply -k $dir"
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - $base"
  echo "secretGenerator:"
  echo "  - name: jackstop-webhook-tls"
  echo "    namespace: jackstop"
  echo "    type: kubernetes.io/tls"
  echo "    files:"
  echo "      - tls.crt"
  echo "      - tls.key"
  echo "      - ca.crt"
  echo "    options:"
  echo "      disableNameSuffixHash: true"
  echo "patches:"
  for obj in Issuer:jackstop-selfsigned Certificate:jackstop-webhook-ca Issuer:jackstop-webhook-ca Certificate:jackstop-webhook; do
    echo "  - patch: |-"
    echo "      \$patch: delete"
    echo "      apiVersion: cert-manager.io/v1"
    echo "      kind: ${obj%%:*}"
    echo "      metadata:"
    echo "        name: ${obj#*:}"
    echo "        namespace: jackstop"
  done
  echo "  - target:"
  echo "      kind: ValidatingWebhookConfiguration"
  echo "      name: jackstop"
  echo "    patch: |-"
  echo "      - op: remove"
  echo "        path: /metadata/annotations/cert-manager.io~1inject-ca-from"
  for ((i = 0; i < n; i++)); do
    echo "      - op: add"
    echo "        path: /webhooks/$i/clientConfig/caBundle"
    echo "        value: $ca_bundle"
  done
} > "$dir/kustomization.yaml"
echo "wrote $dir (CA $dir/ca.crt; serving certificate valid $days days): kubectl apply -k $dir" >&2
