#!/usr/bin/env bash
# `sam local` on this kind of machine (Debian, rootful podman, no container registry):
#
#   scripts/sam-local.sh setup        installs and prepares everything below (idempotent)
#   scripts/sam-local.sh run CMD…     setup, then CMD with podman's Docker API running for it
#                                     (DOCKER_HOST set), e.g. `scripts/sam-local.sh run sam build`
#   scripts/sam-local.sh env          after `sam build`: .aws-sam/build/local.yaml and
#                                     .aws-sam/env.json, for `make dev`'s moto and receiver
#   scripts/sam-local.sh test         setup, `sam build`, then the sam-local suite
#                                     (tests/tests/sam_local.rs; `make sam-local`)
#
# What setup does (issue 18 has the facts it rests on):
# - apt packages: podman, runc, slirp4netns, uidmap, fuse-overlayfs, busybox-static,
#   qemu-user-static;
# - a containers.conf that podman's service reads (CONTAINERS_CONF): runc, ulimits within
#   this machine's hard limits, and slirp4netns with allow_host_loopback as the network, so
#   that a container reaches the host's 127.0.0.1 at 10.0.2.2 (podman's Docker API ignores
#   that default: see network_hook) and never sits on a bridge;
# - qemu's binfmt for aarch64, so that the arm64 image runs;
# - the base images SAM looks for, `public.ecr.aws/lambda/provided:al2023-<arch>` for
#   x86_64 and arm64, made here from Debian's .debs (busybox-static, libc6, libgcc-s1) and
#   the host's CA bundle, plus SAM's own "rapid" image (the same with SAM's runtime interface
#   emulator in /var/rapid), so that SAM never pulls or builds one. A stand-in for Amazon
#   Linux 2023: Debian's glibc 2.36 where AL2023 has 2.34 (README, "sam local").
#
# Podman's Docker API (`podman system service`) runs only while `run` or `test` does, and
# is stopped by its PID on every exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="${DATA_EXPORT_SAM_LOCAL:-$HOME/.cache/data-export-segment/sam-local}"
mkdir -p "$state"
export CONTAINERS_CONF="$state/containers.conf"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=(podman runc slirp4netns uidmap fuse-overlayfs busybox-static qemu-user-static)
install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  echo "==> installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The smallest of the numbers given (ignoring "max" and blanks).
smallest() {
  printf '%s\n' "$@" | grep -E '^[0-9]+$' | sort -n | head -1
}

write_containers_conf() {
  local nofile nproc
  nofile="$(ulimit -Hn)"
  [ "$nofile" = unlimited ] && nofile=1048576
  # nproc above the pid limit fails with EPERM.
  nproc="$(smallest "$(ulimit -Hu)" "$(cat /proc/sys/kernel/pid_max)" \
    "$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null)" "$(cat /sys/fs/cgroup/pids.max 2>/dev/null)")"
  cat > "$CONTAINERS_CONF.new" <<EOF
# Written by scripts/sam-local.sh; podman's service reads it through CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
# Never podman's bridge (a private range): slirp4netns, which reaches the host's loopback
# at 10.0.2.2.
netns = "slirp4netns:allow_host_loopback=true"

[engine]
# crun refuses this machine's hybrid cgroup layout.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
network_cmd_options = ["allow_host_loopback=true"]
EOF
  mv "$CONTAINERS_CONF.new" "$CONTAINERS_CONF"
}

register_binfmt() {
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && return
  echo "==> registering qemu-aarch64 with binfmt_misc"
  [ -e /proc/sys/fs/binfmt_misc/register ] || as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  as_root sh -c "cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register"
}

# The .debs of one architecture (Debian's names), downloaded once into $state/debs/<arch>.
debs=(busybox-static libc6 libgcc-s1)
download_debs() {
  local arch="$1" dir="$state/debs/$1" p
  if [ -f "$dir/.complete" ]; then return; fi
  echo "==> downloading ${debs[*]} for $arch (apt-get download)"
  rm -rf "$dir" && mkdir -p "$dir"
  local native added=""
  native="$(dpkg --print-architecture)"
  if [ "$arch" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    as_root dpkg --add-architecture "$arch"
    added=1
  fi
  as_root apt-get update -qq
  local status=0
  (cd "$dir" && for p in "${debs[@]}"; do apt-get download -qq -o APT::Sandbox::User=root "$p:$arch" || exit 1; done) || status=$?
  if [ -n "$added" ]; then
    as_root dpkg --remove-architecture "$arch"
    as_root apt-get update -qq
  fi
  [ "$status" -eq 0 ] || { echo "apt-get download failed for $arch" >&2; return 1; }
  touch "$dir/.complete"
}

# Lambda's names for the architectures, podman's, Debian's.
podman_arch() { case "$1" in x86_64) echo amd64 ;; arm64) echo arm64 ;; esac; }
debian_arch() { podman_arch "$1"; }

rie() {
  local sam="${DATA_EXPORT_SAM:-$HOME/.cache/data-export-segment/sam}"
  ls "$sam"/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-"$1"
}

# Bump when make_image changes what goes into the images.
image_recipe=1

# public.ecr.aws/lambda/provided:al2023-<arch> and SAM's al2023-rapid-<arch> from the same
# rootfs, rebuilt when the .debs, SAM's emulator or this script change.
make_image() {
  local arch="$1" base="public.ecr.aws/lambda/provided:al2023-$1"
  local rapid="public.ecr.aws/lambda/provided:al2023-rapid-$1"
  local emulator key
  emulator="$(rie "$arch")"
  download_debs "$(debian_arch "$arch")"
  key="$( (echo "$image_recipe"; cat "$state/debs/$(debian_arch "$arch")"/*.deb "$emulator" /etc/ssl/certs/ca-certificates.crt) | sha256sum | cut -c1-16)"
  if [ "$(cat "$state/image-$arch.key" 2>/dev/null)" = "$key" ] &&
    podman image exists "$base" && podman image exists "$rapid"; then
    return
  fi
  echo "==> making $base and $rapid (a Debian rootfs, no registry)"
  local fs="$state/rootfs-$arch" deb applet
  rm -rf "$fs" && mkdir -p "$fs"
  for deb in "$state/debs/$(debian_arch "$arch")"/*.deb; do dpkg-deb -x "$deb" "$fs"; done
  # Debian's merged /usr: /lib and /bin are links in the real system; here, directories.
  mkdir -p "$fs/bin" "$fs/lib" "$fs/etc/ssl/certs" "$fs/var/task" "$fs/var/runtime" "$fs/var/rapid" "$fs/opt" "$fs/tmp"
  cp -a "$fs"/usr/lib/. "$fs/lib/" 2>/dev/null || true
  [ "$arch" = x86_64 ] && mkdir -p "$fs/lib64" && ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$fs/lib64/ld-linux-x86-64.so.2"
  cp "$fs/bin/busybox" "$fs/bin/busybox.tmp" 2>/dev/null || cp "$fs/usr/bin/busybox" "$fs/bin/busybox.tmp"
  rm -rf "$fs/usr/bin/busybox" && mv "$fs/bin/busybox.tmp" "$fs/bin/busybox"
  # The applets of the host's busybox-static (the same version).
  for applet in $(busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$fs/bin/$applet"
  done
  cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$fs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$fs/etc/group"
  printf 'hosts: files dns\n' > "$fs/etc/nsswitch.conf"
  printf '127.0.0.1 localhost\n' > "$fs/etc/hosts"
  chmod 1777 "$fs/tmp"
  cat > "$fs/lambda-entrypoint.sh" <<'EOF'
#!/bin/sh
# As Lambda's own images: under the emulator outside Lambda, the runtime itself inside it.
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
  exec /var/rapid/aws-lambda-rie /var/task/bootstrap "$@"
fi
exec /var/task/bootstrap "$@"
EOF
  chmod +x "$fs/lambda-entrypoint.sh"
  # The base image has no emulator (as Lambda's); SAM's rapid image adds it.
  tar -C "$fs" -c . | podman import --quiet --arch "$(podman_arch "$arch")" \
    --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' - "$base" >/dev/null
  install -m 0755 "$emulator" "$fs/var/rapid/aws-lambda-rie"
  tar -C "$fs" -c . | podman import --quiet --arch "$(podman_arch "$arch")" \
    --change 'ENTRYPOINT ["/var/rapid/aws-lambda-rie", "--log-level", "error"]' - "$rapid" >/dev/null
  rm -rf "$fs"
  echo "$key" > "$state/image-$arch.key"
}

setup() {
  install_packages
  # shellcheck source=scripts/tools.sh
  source "$root/scripts/tools.sh"
  write_containers_conf
  register_binfmt
  network_hook
  make_image x86_64
  make_image arm64
}

# Podman's Docker API puts a container created without a network mode on podman's bridge
# (containers.conf's netns does not apply there), and SAM never sets one (its
# --docker-network host only skips joining a network). So SAM's docker client, in SAM's
# virtualenv, defaults the mode to $SAM_LOCAL_NETWORK_MODE when that is set.
network_hook() {
  local site
  site="$(ls -d "$DATA_EXPORT_SAM"/lib/python3*/site-packages)"
  cat > "$site/data_export_sam_local_network.py" <<'PY'
"""Written by scripts/sam-local.sh: SAM's containers get $SAM_LOCAL_NETWORK_MODE as their
network mode (podman's Docker API would put them on its bridge otherwise)."""
import os

_MODE = os.environ.get("SAM_LOCAL_NETWORK_MODE")
if _MODE:
    import docker.types.containers as _containers

    _init = _containers.HostConfig.__init__

    def _init_with_network_mode(self, *args, **kwargs):
        if not kwargs.get("network_mode"):
            kwargs["network_mode"] = _MODE
        _init(self, *args, **kwargs)

    _containers.HostConfig.__init__ = _init_with_network_mode
PY
  echo "import data_export_sam_local_network" > "$site/data_export_sam_local_network.pth"
}

service_pid=""
stop_service() {
  if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
    kill -TERM "$service_pid"
    wait "$service_pid" 2>/dev/null || true
  fi
  service_pid=""
}

# Podman's Docker API on a socket of ours, stopped by its PID when this script exits.
start_service() {
  local socket="$state/podman.sock"
  rm -f "$socket"
  podman system service --time=0 "unix://$socket" > "$state/podman-service.log" 2>&1 &
  service_pid=$!
  trap stop_service EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local i
  for i in $(seq 100); do
    [ -S "$socket" ] && break
    kill -0 "$service_pid" 2>/dev/null || { cat "$state/podman-service.log" >&2; return 1; }
    sleep 0.1
  done
  [ -S "$socket" ] || { echo "podman's service did not listen on $socket" >&2; return 1; }
  export DOCKER_HOST="unix://$socket"
  export SAM_LOCAL_NETWORK_MODE="slirp4netns:allow_host_loopback=true"
}

# No container may outlive a run.
check_no_containers() {
  local left
  left="$(podman ps -a --format '{{.ID}} {{.Image}} {{.Names}}')"
  if [ -n "$left" ]; then
    echo "containers left behind:" >&2
    echo "$left" >&2
    return 1
  fi
}

# The variables of local runs (CONTRACT §1) that the template does not declare, since a
# deployment never sets them. SAM passes a function only the --env-vars values of
# variables its template declares, so local.yaml, the built template otherwise unchanged,
# declares these (empty) in Globals. (tests/tests/sam_local.rs does the same.)
local_only=(AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_S3 SEGMENT_BASE_URL SEGMENT_CDN_URL)
write_env() {
  local build="$root/.aws-sam/build" host=10.0.2.2
  [ -f "$build/template.yaml" ] || { echo "no $build/template.yaml: run scripts/sam-local.sh run sam build first" >&2; return 1; }
  "$DATA_EXPORT_SAM/bin/python" - "$build/template.yaml" "$build/local.yaml" "${local_only[@]}" <<'PY'
import sys
from samcli.yamlhelper import yaml_dump, yaml_parse
source, target, names = sys.argv[1], sys.argv[2], sys.argv[3:]
template = yaml_parse(open(source).read())
variables = template["Globals"]["Function"]["Environment"]["Variables"]
for name in names:
    assert name not in variables, f"the template sets {name}, which only local runs may"
    variables[name] = ""
open(target, "w").write(yaml_dump(template))
PY
  local moto="http://$host:${MOTO_PORT:-5000}" receiver="http://$host:${RECEIVER_PORT:-9100}"
  local rw ro
  rw="$(printf %s local-api-token-not-for-production | sha256sum | cut -d' ' -f1)"
  ro="$(printf %s local-read-only-token-not-for-production | sha256sum | cut -d' ' -f1)"
  cat > "$root/.aws-sam/env.json" <<EOF
{"Parameters": {
  "TABLE_NAME": "data-export",
  "AWS_ENDPOINT_URL_DYNAMODB": "$moto",
  "AWS_ENDPOINT_URL_SQS": "$moto",
  "AWS_ENDPOINT_URL_S3": "$moto",
  "ARCHIVE_BUCKET": "data-export-archive",
  "QUEUE_URL": "$moto/123456789012/export-queue",
  "DEAD_LETTER_QUEUE_URL": "$moto/123456789012/export-dlq",
  "REPLAY_QUEUE_URL": "$moto/123456789012/export-replay-queue",
  "REPLAY_REQUEST_QUEUE_URL": "$moto/123456789012/export-replay-requests",
  "SEGMENT_BASE_URL": "$receiver",
  "SEGMENT_CDN_URL": "$receiver",
  "API_TOKEN_HASHES": "$rw,ro:$ro",
  "DESTINATION_CACHE_TTL_SECONDS": "1"
}}
EOF
  echo "wrote .aws-sam/build/local.yaml and .aws-sam/env.json (moto $moto, the receiver $receiver, as containers reach them)"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    setup
    ;;
  env)
    source "$root/scripts/tools.sh"
    write_env
    ;;
  run)
    setup
    start_service
    "$@"
    ;;
  test)
    SECONDS=0
    setup
    cd "$root"
    echo "==> sam build (template.yaml, arm64, release; the cargo cache in ${CARGO_TARGET_DIR:-target})"
    build_dir="${SAM_LOCAL_BUILD_DIR:-$state/build}"
    sam build --template-file template.yaml --build-dir "$build_dir" >"$state/sam-build.log" 2>&1 ||
      { cat "$state/sam-build.log" >&2; exit 1; }
    echo "==> the functions' debug builds (the x86_64 runs)"
    for f in export destinations test-event ingest replay; do cargo build --quiet -p "$f"; done
    cargo test --quiet --workspace --test sam_local --no-run
    start_service
    check_no_containers
    status=0
    SAM_LOCAL_BUILD_DIR="$build_dir" SAM_LOCAL_STATE="$state" \
      cargo test --quiet --workspace --test sam_local -- --test-threads=1 --nocapture || status=$?
    stop_service
    check_no_containers || status=1
    echo "==> sam-local suite: $( [ "$status" -eq 0 ] && echo passed || echo FAILED ) in ${SECONDS}s"
    exit "$status"
    ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
