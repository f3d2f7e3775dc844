#!/usr/bin/env bash
# Installs the Debian packages the integration tests use, when any is missing: CNCF Distribution
# (docker-registry), skopeo, openssl, containerd (ctr), podman, promtool (prometheus), a
# single-node Ceph (monitor, OSD, RADOS Gateway and their tools, for a real S3 store) and Go with
# the Go libraries the OCI conformance suite is built with, and chromium (the web console's browser
# tests). Quiet and quick when everything is there. No service is started: the tests run their
# own, on private sockets/ports.
set -euo pipefail

need=()
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ctr >/dev/null 2>&1 && command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v podman >/dev/null 2>&1 || need+=(podman)
# promtool (in Debian's prometheus package) checks and unit-tests deploy/prometheus's alerting rules.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Ceph: test/helpers/radosgw.ts runs ceph-mon, ceph-osd and radosgw itself, in a temp dir.
command -v ceph-mon >/dev/null 2>&1 && command -v monmaptool >/dev/null 2>&1 || need+=(ceph-mon ceph-base)
command -v ceph-osd >/dev/null 2>&1 || need+=(ceph-osd)
command -v radosgw >/dev/null 2>&1 || need+=(radosgw)
command -v ceph >/dev/null 2>&1 && command -v radosgw-admin >/dev/null 2>&1 || need+=(ceph-common)
# The web console's browser tests and README screenshots drive Debian's chromium with
# playwright-core (test/helpers/browser.ts), and need a font to render text with.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# Go (1.19, golang-go) and the library packages ../shared/conformance/build.sh compiles the OCI
# conformance suite with, offline (test/helpers/oci-conformance.ts); the same list as in build.sh.
go_pkgs=(golang-go golang-github-google-uuid-dev golang-github-opencontainers-go-digest-dev
  golang-github-mitchellh-mapstructure-dev golang-gopkg-yaml.v3-dev golang-github-google-go-cmp-dev
  golang-github-go-logr-logr-dev golang-github-google-pprof-dev golang-golang-x-net-dev
  golang-golang-x-sys-dev golang-golang-x-text-dev)
installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' "${go_pkgs[@]}" 2>/dev/null || true) "
for p in "${go_pkgs[@]}"; do [[ "$installed" == *" installed:$p "* ]] || need+=("$p"); done
[ ${#need[@]} -eq 0 ] && exit 0

echo "ensure-test-tools: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure-test-tools: need root (or sudo) to install ${need[*]} with apt-get" >&2; exit 1
  fi
fi
# The docker-registry, containerd and ceph packages would start services (one on port 5000);
# tests start their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ "$created_policy" = 1 ] && $SUDO rm -f "$policy"
# In case a service was started anyway, leave port 5000 free.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then
  $SUDO systemctl disable --now containerd >/dev/null 2>&1 || true
fi
# Only promtool is wanted from the prometheus package, never its server (port 9090).
if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet prometheus 2>/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
# Ceph's packages enable their targets; the tests' cluster is its own. Only when this run installed
# Ceph (a machine's own cluster is left alone).
if [[ " ${need[*]} " == *" ceph-"* || " ${need[*]} " == *" radosgw "* ]] && command -v systemctl >/dev/null 2>&1; then
  for unit in ceph.target ceph-mon.target ceph-osd.target ceph-radosgw.target ceph-mgr.target ceph-mds.target ceph-crash.service; do
    if systemctl is-active --quiet "$unit" 2>/dev/null || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
      $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
fi
echo "ensure-test-tools: done" >&2
