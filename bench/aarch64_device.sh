#!/usr/bin/env bash
# A genuinely aarch64 "device" on an x86_64 machine: a Debian arm64 userland run by qemu-user (binfmt_misc),
# with the edgelstm runtime (numpy + tflite-runtime aarch64 wheels, installed from here) in ~/.edgelstm/venv,
# and its own sshd inside a network namespace joined to this host by a veth pair.
#
#   sudo bench/aarch64_device.sh up     # build (first time ~4 min) and start; prints the host to deploy to
#   sudo bench/aarch64_device.sh down   # stop sshd, unmount, delete the namespace
# bench/aarch64_e2e.py deploys an int8 model there and checks the streamed outputs against local ones.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOTFS=${EDGELSTM_ARM64_ROOTFS:-/var/tmp/edgelstm-arm64}
STATE=${ROOTFS}.state
NS=el5-arm64
VETH=el5arm64h
HOST_IP=10.77.254.1
DEV_IP=10.77.254.2
PY=${PYTHON:-python3}

down() {
  if [ -f "$STATE/sshd.pid" ]; then kill "$(cat "$STATE/sshd.pid")" 2>/dev/null || true; rm -f "$STATE/sshd.pid"; fi
  for m in proc dev; do mountpoint -q "$ROOTFS/$m" && umount -l "$ROOTFS/$m"; done
  ip link del "$VETH" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}

up() {
  t0=$(date +%s)
  command -v debootstrap >/dev/null && [ -x /usr/bin/qemu-aarch64-static ] || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static debootstrap \
      binfmt-support >/dev/null; }
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 || true
  if [ ! -x "$ROOTFS/usr/sbin/sshd" ]; then
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,openssh-server bookworm "$ROOTFS" \
      http://deb.debian.org/debian >"$ROOTFS.debootstrap.log" 2>&1 || { tail -20 "$ROOTFS.debootstrap.log"; exit 1; }
  fi
  echo "rootfs ready after $(( $(date +%s) - t0 )) s: $(chroot "$ROOTFS" uname -m), $(chroot "$ROOTFS" python3 -V)"
  mkdir -p "$STATE"
  mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
  mountpoint -q "$ROOTFS/dev" || mount --bind /dev "$ROOTFS/dev"

  # The runtime: aarch64 wheels fetched here (the device has no index), plus this package's own wheel.
  venv=/root/.edgelstm/venv
  [ -x "$ROOTFS$venv/bin/python" ] || chroot "$ROOTFS" python3 -m venv --without-pip "$venv"
  site=$(echo "$ROOTFS$venv"/lib/python3*/site-packages)
  pyver=$(chroot "$ROOTFS" python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')
  rm -rf "$STATE/wheel" && $PY -m pip wheel -q --no-deps -w "$STATE/wheel" . 
  $PY -m pip install -q --upgrade --no-deps --target "$site" --python-version "$pyver" --only-binary=:all: \
    --platform manylinux_2_34_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux2014_aarch64 "numpy<2" "tflite-runtime==2.14.*" "click>=8.1" "$STATE"/wheel/edgelstm-*.whl
  echo "runtime: $(chroot "$ROOTFS" $venv/bin/python -c 'import edgelstm, numpy, tflite_runtime; print("edgelstm", edgelstm.__version__, "numpy", numpy.__version__, "tflite-runtime", tflite_runtime.__version__)')"

  # Login: a key made here; sshd with its own config inside the namespace.
  [ -f "$STATE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$STATE/id_ed25519"
  install -d -m 700 "$ROOTFS/root/.ssh" && cp "$STATE/id_ed25519.pub" "$ROOTFS/root/.ssh/authorized_keys"
  [ -f "$ROOTFS/etc/ssh/edgelstm_host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$ROOTFS/etc/ssh/edgelstm_host_key"
  cat >"$ROOTFS/etc/ssh/sshd_config_edgelstm" <<CFG
Port 22
ListenAddress $DEV_IP
HostKey /etc/ssh/edgelstm_host_key
AuthorizedKeysFile /root/.ssh/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
CFG
  mkdir -p "$ROOTFS/run/sshd"
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$VETH" 2>/dev/null || true
  ip netns add "$NS"
  ip link add "$VETH" type veth peer name el5arm64d
  ip link set el5arm64d netns "$NS"
  ip addr add "$HOST_IP/30" dev "$VETH" && ip link set "$VETH" up
  ip netns exec "$NS" ip addr add "$DEV_IP/30" dev el5arm64d
  ip netns exec "$NS" ip link set el5arm64d up
  ip netns exec "$NS" ip link set lo up
  ip netns exec "$NS" chroot "$ROOTFS" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config_edgelstm \
    >"$STATE/sshd.log" 2>&1 &
  echo $! >"$STATE/sshd.pid"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$DEV_IP/22") 2>/dev/null && break
    sleep 0.2
  done
  echo "$DEV_IP ssh-ed25519 $(cut -d' ' -f2 "$ROOTFS/etc/ssh/edgelstm_host_key.pub")" >"$STATE/known_hosts"
  echo "device up after $(( $(date +%s) - t0 )) s: root@$DEV_IP (key $STATE/id_ed25519, known_hosts $STATE/known_hosts)"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
