#!/bin/sh
# entrypoint.sh: the container's first process: mounts with mount.fuse3 -o
# drop_privileges (omnihub-fuse then runs with no capability, in the
# background), stays while the mount is up, and unmounts on SIGTERM.
# Not for: the image (Containerfile) or a cluster (omnihub-k8s.yaml).
#
# usage: entrypoint.sh [OPTS]   OPTS: omnihub-fuse's -o options, comma-separated
#   $OMNIHUB_MOUNTPOINT: where to mount (default /mnt/hub)
set -eu

mnt=${OMNIHUB_MOUNTPOINT:-/mnt/hub}
opts=${1:-allow_other,cache=/var/cache/omnihub}

mkdir -p "$mnt"
# mount.fuse3 opens /dev/fuse and mounts (CAP_SYS_ADMIN), then runs
# "omnihub-fuse omnihub /dev/fd/N -o OPTS" without privileges; it returns
# once the mount is up, with the daemon's exit status on failure.
mount.fuse3 "omnihub-fuse#omnihub" "$mnt" -o "drop_privileges,$opts"
echo "omnihub: mounted on $mnt"

stop() {
	umount "$mnt" 2>/dev/null || umount -l "$mnt"
	exit 0
}
trap stop TERM INT
# The daemon is not our child: follow the mount instead. It ends when the
# daemon dies (the mount goes) or a signal stops us.
while mountpoint -q "$mnt"; do
	sleep 2 &
	wait $! || true
done
echo "omnihub: $mnt is no longer mounted" >&2
exit 1
